/**
 * The RESP bytes the hand-written parsers and writers test and write, named once.
 */

/** `\r` */
export const CR = 13;
/** `\n` */
export const LF = 10;
/** Bytes of the CRLF that ends every RESP line and bulk. */
export const CRLF_LENGTH = 2;
/** `*` array (a request's multibulk header too) */
export const STAR = 42;
/** `$` bulk string */
export const DOLLAR = 36;
/** `:` integer */
export const COLON = 58;
/** `+` simple string */
export const PLUS = 43;
/** `-` error */
export const MINUS = 45;
