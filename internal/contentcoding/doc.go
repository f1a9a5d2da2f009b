// Package contentcoding is what the balancer and the CSS edge share about
// HTTP content codings (RFC 9110 8.4): choosing gzip, brotli or identity
// from a client's Accept-Encoding, the per-coding variants of a strong
// ETag, and encoders that reuse their state so compressing allocates
// nothing in steady state.
//
// It must not decide what is worth compressing (types, sizes, statuses):
// that is the caller's policy.
package contentcoding
