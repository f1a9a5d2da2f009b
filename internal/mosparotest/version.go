package mosparotest

import (
	"fmt"
	"hash/crc32"
	"net/url"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// DefaultVersion is the code version (Kernel::VERSION) of a node and the installed version of
// a database unless set otherwise.
const DefaultVersion = "1.5.4"

// codeVersion is what a node's code version shows outside PHP: the build manifest and
// entrypoints (FACTS 11.3), identical on nodes of one version, different between versions.
type codeVersion struct {
	name        string
	manifest    []byte
	entrypoints []byte
	etag        []byte // nginx's "mtime-size" ETag, changing with the version
}

func newCodeVersion(v string) *codeVersion {
	// Webpack Encore's output without versioning lists fixed names; the emulator adds the
	// version so that the files differ between versions as real builds do.
	return &codeVersion{
		name: v,
		manifest: fmt.Appendf(nil, `{"build/mosparo-frontend.js":"/build/mosparo-frontend.js",`+
			`"build/mosparo-frontend.css":"/build/mosparo-frontend.css","build/mosparo.js":"/build/mosparo.js",`+
			`"build/images/logo.%s.svg":"/build/images/logo.%s.svg"}`, v, v),
		entrypoints: fmt.Appendf(nil, `{"entrypoints":{"mosparo-frontend":{"js":["/build/mosparo-frontend.js?v=%s"],`+
			`"css":["/build/mosparo-frontend.css?v=%s"]}}}`, v, v),
		etag: fmt.Appendf(nil, `"%08x-2f1"`, crc32.ChecksumIEEE([]byte(v))),
	}
}

// versionState is a node's code version, swapped whole.
type versionState struct{ p atomic.Pointer[codeVersion] }

func (s *versionState) load() *codeVersion { return s.p.Load() }

// SetVersion replaces the node's code (Kernel::VERSION and the build assets), as syncing the
// source code of a new release onto the node does. While the database's installed version
// differs, the node reports the update as not finished (FACTS 1.1, 11.2).
func (n *Node) SetVersion(v string) {
	if v == "" {
		v = DefaultVersion
	}
	n.version.p.Store(newCodeVersion(v))
}

// Version returns the node's code version.
func (n *Node) Version() string { return n.version.load().name }

// effectiveHealth is the state the node acts on: a Connected node whose code differs from the
// installed version has an unfinished update (HealthHelper checks the version first).
func (n *Node) effectiveHealth() Health {
	h := Health(n.health.Load())
	if h == Connected && n.db.InstalledVersion() != n.version.load().name {
		return UpdateNotFinished
	}
	return h
}

// installedVersion is mosparo_installed_version in config/env.mosparo.php, shared by the nodes
// of one cluster (a shared volume or a synced file).
type installedVersion struct{ p atomic.Pointer[string] }

// InstalledVersion returns mosparo_installed_version.
func (d *Database) InstalledVersion() string {
	if v := d.installed.p.Load(); v != nil {
		return *v
	}
	return DefaultVersion
}

// SetInstalledVersion sets mosparo_installed_version.
func (d *Database) SetInstalledVersion(v string) { d.installed.p.Store(&v) }

var pathFinalizeProcess = []byte("/administration/update/finalize/process?oldVersion=")

const (
	pathManifest    = "/build/manifest.json"
	pathEntrypoints = "/build/entrypoints.json"
)

// serveFinalize is UpdateController::finalize: on a node whose code differs from the installed
// version it runs the migrations and writes its own Kernel::VERSION (FACTS 11.3), so an old-code
// node writes the old version back.
func (n *Node) serveFinalize(ctx *fasthttp.RequestCtx) {
	own := n.version.load().name
	old := n.db.InstalledVersion()
	if old == own {
		redirect(ctx, fasthttp.StatusFound, pathProject)
		return
	}
	n.db.SetInstalledVersion(own)
	n.finalized.Add(1)
	redirect(ctx, fasthttp.StatusFound, append(append([]byte(nil), pathFinalizeProcess...), url.QueryEscape(old)...))
}

// Finalized returns how many times this node ran finalize and wrote its version.
func (n *Node) Finalized() int64 { return n.finalized.Load() }
