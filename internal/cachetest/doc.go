// Package cachetest starts real redis-server and memcached processes on
// free loopback ports for tests, and stops them when the test ends. A
// missing binary fails the test (CI installs them) unless -short is set,
// where it skips. It must not be imported by non-test code.
package cachetest
