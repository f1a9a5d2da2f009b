// Package clocktest provides clocks for tests of components that take a
// clock.Clock: Manual, which moves only when the test says so, and Observed,
// which reports every wait a component starts so a test can wait for "the
// loop reached its backoff" on a channel instead of sleeping.
package clocktest
