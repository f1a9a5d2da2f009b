package mosparoemu

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

// codeVersion is what a node's code version shows outside PHP (FACTS 11.3 as corrected by
// issue 12): mosparo's Webpack Encore build has versioning off, so entrypoints.json and the names
// it lists are the same in every release, and only the content of the built files changes
// between releases whose front-end sources differ. The emulator builds that content from the
// assets version (the code version unless SetVersionAssets says otherwise).
type codeVersion struct {
	name   string
	assets string
	files  map[string]staticFile // /build/* by path
}

// staticFile is one file nginx serves, with its "mtime-size" ETag.
type staticFile struct {
	body, ct, etag []byte
}

// encoreEntrypoints is Encore 4's entrypoints.json for mosparo's two entries without
// versioning: one text for every release.
const encoreEntrypoints = `{
  "entrypoints": {
    "mosparo": {
      "js": [
        "/build/mosparo.js"
      ],
      "css": [
        "/build/mosparo.css"
      ]
    },
    "mosparo-frontend": {
      "js": [
        "/build/mosparo-frontend.js"
      ],
      "css": [
        "/build/mosparo-frontend.css"
      ]
    }
  }
}`

func newCodeVersion(v, assets string) *codeVersion {
	// The deployment time is the files' mtime: nginx's ETag changes with every unpacked
	// release even when the content does not.
	mtime := crc32.ChecksumIEEE([]byte(v))
	font := fmt.Sprintf("build/fonts/tabler-icons.%08x.woff2", crc32.ChecksumIEEE([]byte("font "+assets)))
	banner := "/*! mosparo " + assets + " (emulated by mosparoemu) */\n"
	c := &codeVersion{name: v, assets: assets, files: map[string]staticFile{}}
	add := func(path string, ct []byte, body []byte) {
		c.files[path] = staticFile{body: body, ct: ct, etag: fmt.Appendf(nil, `"%08x-%x"`, mtime, len(body))}
	}
	add(pathEntrypoints, ctJSON, []byte(encoreEntrypoints))
	add(pathManifest, ctJSON, fmt.Appendf(nil, `{"build/mosparo.css":"/build/mosparo.css","build/mosparo.js":"/build/mosparo.js",`+
		`"build/mosparo-frontend.css":"/build/mosparo-frontend.css","build/mosparo-frontend.js":"/build/mosparo-frontend.js",`+
		`"%s":"/%s","build/images/mosparo-logo.svg":"/build/images/mosparo-logo.svg"}`, font, font))
	add("/build/mosparo-frontend.js", ctJS, append([]byte(banner), frontendJS...))
	add("/build/mosparo-frontend.css", ctCSS, append([]byte(banner), frontendCSS...))
	add("/build/mosparo.js", ctJS, []byte(banner+"(()=>{window.mosparoAdmin={version:\""+assets+"\"}})();\n"))
	add("/build/mosparo.css", ctCSS, []byte(banner+".page{display:flex}\n"))
	return c
}

// versionState is a node's code version, swapped whole.
type versionState struct{ p atomic.Pointer[codeVersion] }

func (s *versionState) load() *codeVersion { return s.p.Load() }

// SetVersion replaces the node's code (Kernel::VERSION and the build assets), as syncing the
// source code of a new release onto the node does. While the database's installed version
// differs, the node reports the update as not finished (FACTS 1.1, 11.2).
func (n *Node) SetVersion(v string) { n.SetVersionAssets(v, v) }

// SetVersionAssets is SetVersion for a release whose built assets equal those of release
// assets: mosparo 1.5.0 to 1.5.4 share their front-end sources and package-lock.json, so their
// builds, and the fingerprints taken of them, are alike.
func (n *Node) SetVersionAssets(v, assets string) {
	if v == "" {
		v = DefaultVersion
	}
	if assets == "" {
		assets = v
	}
	n.version.p.Store(newCodeVersion(v, assets))
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
