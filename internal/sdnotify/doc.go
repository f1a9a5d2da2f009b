// Package sdnotify speaks the systemd service notification protocol
// (sd_notify(3)): it tells the service manager that mosparo-lb is ready,
// reloading or stopping, and keeps the watchdog fed. Every message is one
// datagram to the unix socket named by $NOTIFY_SOCKET, which may be an
// abstract name starting with "@". Without $NOTIFY_SOCKET (not started by
// systemd, or a unit that is not Type=notify) every call is a no-op, so
// callers never need to check how they were started.
//
// The package reads the environment on every call and keeps no state.
package sdnotify
