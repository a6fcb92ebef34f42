/**
 * Errors a request can end in, independent of HTTP: app.ts maps each to its status code in one
 * place (see its onError).
 */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

/** An unknown model, model version or path. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** A body in an encoding the server cannot decode (Content-Encoding). */
export class UnsupportedMediaTypeError extends Error {
  override name = 'UnsupportedMediaTypeError';
}

export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
}

/** An operation of a protocol that this server does not offer (e.g. loading another model). */
export class UnsupportedOperationError extends Error {
  override name = 'UnsupportedOperationError';
}

/** The model is not loaded yet, or failed to. */
export class NotReadyError extends Error {
  override name = 'NotReadyError';
}

/** Why a request was shed: the queue was full, or it waited past the deadline (see Batcher). */
export type OverloadReason = 'queue_full' | 'queue_timeout';

/** The server has more to score than it can in time: the client should retry, here or elsewhere. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(
    readonly reason: OverloadReason,
    message: string,
  ) {
    super(message);
  }
}

/** The forward pass of the request's batch failed; the batcher has logged why, once for the batch. */
export class BatchFailedError extends Error {
  override name = 'BatchFailedError';
  constructor(readonly batchRows: number) {
    super(`the forward pass of this request's batch (${batchRows} rows) failed; the server is still serving, see its log`);
  }
}
