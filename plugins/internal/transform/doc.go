// Package transform is the engine shared by the request_transformer and
// response_transformer plugins: it validates and compiles their config
// (Compile) into a Program, and applies a Program to a request or a
// response.
//
// Everything that can be decided when the config loads is: header names are
// checked and canonicalised, templates ("/v2/users/{id}") are split into
// literal and parameter parts, query names and literal values are
// percent-encoded, and JSON paths are merged into a tree whose inserted
// fragments (`"meta":{"source":"weir"}`) are pre-rendered. Per request the
// header operations do not allocate, and the query and JSON operations work
// in pooled buffers (see scratch).
//
// The JSON body is edited as bytes, not decoded into maps and re-encoded:
// a single pass validates the whole document and copies every untouched
// value verbatim, so key order, number spellings and string escapes the
// client or upstream chose survive, and the pass allocates nothing.
package transform
