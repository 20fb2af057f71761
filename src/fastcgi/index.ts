// The FastCGI codec (FastCGI spec 1.0): pure protocol, bytes in and out. No sockets, no logging, no
// request semantics; src/server and src/client build on it.

export {
  FCGI_KEEP_CONN,
  FCGI_VERSION_1,
  HEADER_LEN,
  MAX_CONTENT_LEN,
  NULL_REQUEST_ID,
  ProtocolStatus,
  RecordType,
  Role,
  STREAM_RECORD_LEN
} from './constants.ts'
export { paddingFor, readHeader, writeHeader } from './header.ts'
export type { RecordHeader } from './header.ts'
export { decodeParams, decodeParamsText, decodeParamNames, decodeExpected, ExpectedNames, paramValue, paramsText, encodeParams, encodedParamsLength } from './params.ts'
export type { ParamPairs, ParamNames } from './params.ts'
export {
  FIXED_RECORD_LEN,
  buildAbortRequest,
  buildBeginRequest,
  buildEndRequest,
  buildGetValues,
  buildGetValuesResult,
  buildUnknownType,
  parseBeginRequest,
  parseEndRequest,
  writeEndRequest
} from './records.ts'
export { RecordParser } from './record-parser.ts'
export type { RecordSink } from './record-parser.ts'
export { buildStreamEnd, frameChunks, frameInto, frameResponse, framedLength } from './record-writer.ts'
