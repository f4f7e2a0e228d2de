/// <reference types="@webgpu/types" />
/** Page entry of the weight-kernel browser test: runs the shared checks on the page's device. */
import { getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';
import { requestLorafuseDevice } from '../src/index.js';
import { runWeightChecks } from '../src/testing/index.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'weight kernels test device') });

registerPageApi({
  async weightChecks() {
    return runWeightChecks(await getDevice());
  },
});
