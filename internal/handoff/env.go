package handoff

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The variables of the two ways sockets arrive. systemd's are documented in
// sd_listen_fds(3); the upgrade ones are ours and follow the same shape, but
// name the parent, since a parent using os/exec cannot know the child's PID
// before it runs (systemd sets LISTEN_PID between fork and exec).
const (
	envListenPID     = "LISTEN_PID"
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"

	envUpgradeParent  = "MOSPARO_LB_UPGRADE_PARENT"
	envUpgradeFDs     = "MOSPARO_LB_UPGRADE_FDS"
	envUpgradeFDNames = "MOSPARO_LB_UPGRADE_FDNAMES"
	envUpgradeReadyFD = "MOSPARO_LB_UPGRADE_READY_FD"
)

// firstFD is SD_LISTEN_FDS_START: passed sockets are fds 3, 4, …
const firstFD = 3

// maxFDs bounds LISTEN_FDS: an LB has a handful of listeners, and a huge
// count would make us wrap thousands of descriptors we never opened.
const maxFDs = 256

// maxNameLen is systemd's limit on FileDescriptorName= (fdname_is_valid).
const maxNameLen = 255

var (
	// ErrOtherProcess: LISTEN_PID (or the upgrade parent) names another
	// process, so the variables leaked from an ancestor and the descriptors
	// are not ours to take; sd_listen_fds(3) ignores them the same way.
	ErrOtherProcess = errors.New("handoff: socket variables are meant for another process")
	// ErrEnvironment: the variables are for this process but malformed.
	ErrEnvironment = errors.New("handoff: malformed socket variables")
)

// Source says where inherited sockets came from.
type Source int

const (
	// None: no socket was passed.
	None Source = iota
	// Systemd: socket activation (LISTEN_FDS).
	Systemd
	// Upgrade: a parent mosparo-lb re-executed its binary (SIGUSR2).
	Upgrade
)

func (s Source) String() string {
	switch s {
	case Systemd:
		return "systemd"
	case Upgrade:
		return "upgrade"
	}
	return "none"
}

// Env is the validated content of the variables: Count descriptors from fd
// 3 on, named Names (an empty name is unnamed), and for an upgrade the
// descriptor on which to report readiness.
type Env struct {
	Source  Source
	Count   int
	Names   []string
	ReadyFD int // Upgrade only; 0 otherwise
}

// Process is what ParseEnv checks the variables against.
type Process struct {
	LookupEnv func(string) (string, bool)
	PID, PPID int
}

// ParseEnv reads the socket variables. Without any it returns Source None.
// Upgrade variables win over systemd ones: the parent cleared its own
// LISTEN_* before passing its environment on, so both present means the
// systemd ones are stale. Variables meant for another process give
// ErrOtherProcess; malformed ones ErrEnvironment.
func ParseEnv(p Process) (Env, error) {
	if v, ok := p.LookupEnv(envUpgradeParent); ok {
		e, err := parseEnv(p, Upgrade, v, p.PPID, envUpgradeFDs, envUpgradeFDNames)
		if err != nil {
			return Env{}, err
		}
		rv, ok := p.LookupEnv(envUpgradeReadyFD)
		if !ok {
			return Env{}, fmt.Errorf("%w: %s is set but %s is not", ErrEnvironment, envUpgradeParent, envUpgradeReadyFD)
		}
		// The parent puts the pipe right after the sockets; anything else
		// would make us write to a descriptor we did not get.
		fd, err := parseCount(rv)
		if err != nil || fd != firstFD+e.Count {
			return Env{}, fmt.Errorf("%w: %s=%q, want %d (right after the sockets)", ErrEnvironment, envUpgradeReadyFD, clip(rv), firstFD+e.Count)
		}
		e.ReadyFD = fd
		return e, nil
	}
	if v, ok := p.LookupEnv(envListenPID); ok {
		return parseEnv(p, Systemd, v, p.PID, envListenFDs, envListenFDNames)
	}
	if _, ok := p.LookupEnv(envListenFDs); ok {
		return Env{}, fmt.Errorf("%w: %s is set without %s", ErrEnvironment, envListenFDs, envListenPID)
	}
	return Env{}, nil
}

func parseEnv(p Process, src Source, pidVal string, wantPID int, fdsVar, namesVar string) (Env, error) {
	pid, err := parseCount(pidVal)
	if err != nil || pid == 0 {
		return Env{}, fmt.Errorf("%w: %s=%q is not a process ID", ErrEnvironment, pidVar(src), clip(pidVal))
	}
	if pid != wantPID {
		return Env{}, fmt.Errorf("%w: %s=%d, this process is %d", ErrOtherProcess, pidVar(src), pid, wantPID)
	}
	v, ok := p.LookupEnv(fdsVar)
	if !ok {
		return Env{}, fmt.Errorf("%w: %s is set but %s is not", ErrEnvironment, pidVar(src), fdsVar)
	}
	n, err := parseCount(v)
	if err != nil || n > maxFDs {
		return Env{}, fmt.Errorf("%w: %s=%q is not a count of 0 to %d", ErrEnvironment, fdsVar, clip(v), maxFDs)
	}
	e := Env{Source: src, Count: n, Names: make([]string, n)}
	names, ok := p.LookupEnv(namesVar)
	if !ok || n == 0 {
		return e, nil
	}
	parts := strings.Split(names, ":")
	if len(parts) != n {
		return Env{}, fmt.Errorf("%w: %s has %d names for %d descriptors", ErrEnvironment, namesVar, len(parts), n)
	}
	for i, name := range parts {
		if !validName(name) {
			return Env{}, fmt.Errorf("%w: %s: name %d %q is not a valid descriptor name", ErrEnvironment, namesVar, i+1, clip(name))
		}
	}
	copy(e.Names, parts)
	return e, nil
}

func pidVar(src Source) string {
	if src == Upgrade {
		return envUpgradeParent
	}
	return envListenPID
}

// parseCount accepts plain decimal digits only (no sign, no spaces, no
// "0x"), as sd_listen_fds(3)'s safe_atoi does in practice.
func parseCount(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, strconv.ErrRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

// validName is systemd's fdname_is_valid: printable ASCII except ':', at
// most 255 bytes. An empty name is allowed here and means unnamed.
func validName(s string) bool {
	if len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// clip keeps hostile values from flooding an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
