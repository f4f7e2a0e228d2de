/// <reference types="@webgpu/types" />
/** Page entry of the forward-kernel browser test: runs the shared checks on the page's device. */
import { getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';
import { requestLorafuseDevice } from '../src/index.js';
import { runForwardChecks } from '../src/testing/index.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'forward kernels test device') });

registerPageApi({
  async forwardChecks() {
    return runForwardChecks(await getDevice());
  },
});
