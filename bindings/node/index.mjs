// ESM entry point: the same module as index.js (`import { Client } from 'ferrymq'`).
import ferrymq from './index.js';

export const {
  Client,
  Producer,
  TransactionProducer,
  PushConsumer,
  SimpleConsumer,
  Admin,
  Message,
  FerryError,
  InvalidArgument,
  NotFound,
  Conflict,
  Timeout,
  ConnectionError,
  Unauthorized,
  Forbidden,
  Unavailable,
  InsufficientStorage,
} = ferrymq;
export default ferrymq;
