/// <reference types="@webgpu/types" />
/**
 * The runner page's compare driver (browser code, bundled by build-page.mjs): fetches two tensors'
 * byte ranges from the local server and compares them with the compare kernel. Only URLs, types and
 * tolerances arrive through DevTools; the statistics go back as small JSON text.
 */
import { requestLorafuseDevice, runCompare } from '@lorafuse/kernels';
import { fetchBytes, getDevice, registerPageApi, startPage } from '@lorafuse/runner/page';
import { statsToWire, type PageCompareRequest } from '../protocol.js';

startPage({ requestDevice: (adapter) => requestLorafuseDevice(adapter, 'lorafuse runner device') });

async function compareTensors(req: PageCompareRequest): Promise<string> {
  const device = await getDevice();
  const [a, b] = await Promise.all([fetchBytes(req.a.url), fetchBytes(req.b.url)]);
  const stats = await runCompare(device, {
    count: req.count,
    a: { type: req.a.type, bytes: a },
    b: { type: req.b.type, bytes: b },
    atol: req.atol,
    rtol: req.rtol,
    equalNan: req.equalNan,
    label: `compare ${req.name}`,
  });
  return statsToWire(stats);
}

registerPageApi({ compareTensors });
