/**
 * PyTorch `.bin` state dicts (`torch.save`'s zip format), read without running anything: the zip
 * directory, a restricted pickle interpreter with an allow-list of globals, and the tensor table.
 */
export { TorchFormatError, type TorchFormatErrorCode } from './errors.js';
export { MAX_CENTRAL_DIRECTORY_BYTES, MAX_ZIP_ENTRIES, readZipDirectory, zipEntryDataOffset, type ZipDirectory, type ZipEntry } from './zip.js';
export {
  DEFAULT_PICKLE_LIMITS,
  opcodeName,
  runRestrictedPickle,
  PickleDict,
  PickleList,
  PickleTuple,
  type PickleHooks,
  type PickleLimits,
  type PickleValue,
} from './pickle.js';
export { readStateDictPickle, TorchStorageRef, TorchTensorView, type TorchStateDict } from './state-dict-pickle.js';
export { MAX_PICKLE_BYTES, readTorchCheckpoint } from './checkpoint.js';
export { isTorchWeightsFile, MAX_TENSORS_PER_FILE, readWeightsHeader } from './weights-header.js';
