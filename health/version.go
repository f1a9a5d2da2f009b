package health

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mosparo-lb/mosparo-lb/internal/nodecall"
)

// Fingerprint identifies a node's code version without PHP: a hash of the
// built assets its /build/entrypoints.json names. mosparo builds them with
// Webpack Encore without versioning (webpack.config.js, 1.5.4), so their
// names (/build/mosparo.js, mosparo.css, mosparo-frontend.js, .css) are the
// same in every release and entrypoints.json with them; their content
// changes when a release changes the front-end sources or dependencies.
// Releases that change neither (1.5.0 to 1.5.4 share assets/ and
// package-lock.json) have one fingerprint. The zero Fingerprint is unknown.
type Fingerprint [12]byte

// IsZero reports whether f is unknown.
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// String is the hex form shown in /status, logs and metrics; "" when
// unknown.
func (f Fingerprint) String() string {
	if f.IsZero() {
		return ""
	}
	return hex.EncodeToString(f[:])
}

// MarshalText writes String.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// AssetClient fetches the static files a fingerprint hashes. A ProbeClient
// that also implements it (HTTPClient does) enables fingerprints.
type AssetClient interface {
	// GetAsset sends GET r.Path to r.Address without following redirects,
	// conditional on the validators in r, bounded by ctx and r.MaxBody.
	GetAsset(ctx context.Context, r AssetRequest) (nodecall.Answer, error)
}

// AssetRequest is one conditional GET of a static file.
type AssetRequest struct {
	Address, Host, Path          string
	IfNoneMatch, IfModifiedSince string
	MaxBody                      int
}

// Errors a fingerprint fails with, wrapped with the path and details.
var (
	// ErrEntrypoints: entrypoints.json is not Encore's JSON or names a
	// file that is not a plain /build/ path.
	ErrEntrypoints = errors.New("not a Webpack Encore entrypoints.json")
	// ErrAssetAnswer: a file was answered with something other than 200
	// (or 304 to a conditional request).
	ErrAssetAnswer = errors.New("not a static file")
)

const (
	entrypointsPath = "/build/entrypoints.json"
	maxEntrypoints  = 64 << 10 // Encore's is a few hundred bytes
	maxAssetFiles   = 32       // mosparo 1.5 names 4
	maxAssetPath    = 256
	// maxAssetBody bounds one built file: mosparo.js, the largest, is a
	// few MiB. A fingerprint holds one file (twice, briefly) at a time.
	maxAssetBody = 8 << 20
	maxValidator = 256
)

// versionRecord is the last fingerprint of one node. Immutable once
// built: the Checker swaps it whole.
type versionRecord struct {
	fp    Fingerprint
	at    time.Time // when it was taken
	err   string    // why it failed; fp is zero then
	paths []string  // what entrypoints.json named, sorted
	files []assetFile
}

// assetFile is one hashed file with the validators that let the next
// fingerprint ask for it conditionally.
type assetFile struct {
	path, etag, lastModified string
	sum                      [sha256.Size]byte
}

func (r *versionRecord) file(path string) *assetFile {
	if r == nil {
		return nil
	}
	for i := range r.files {
		if r.files[i].path == path {
			return &r.files[i]
		}
	}
	return nil
}

// takeFingerprint fetches entrypoints.json and every file it names from
// the node, asking conditionally for what prev already hashed, and returns
// the new record (with err set and a zero fingerprint on failure).
func takeFingerprint(ctx context.Context, cl AssetClient, address, host string, prev *versionRecord, now time.Time) *versionRecord {
	rec, err := fingerprintFiles(ctx, cl, address, host, prev)
	if err != nil {
		return &versionRecord{at: now, err: clean(err.Error())}
	}
	rec.at = now
	return rec
}

func fingerprintFiles(ctx context.Context, cl AssetClient, address, host string, prev *versionRecord) (*versionRecord, error) {
	ep, body, err := fetchAsset(ctx, cl, address, host, entrypointsPath, maxEntrypoints, prev.file(entrypointsPath))
	if err != nil {
		return nil, err
	}
	rec := &versionRecord{files: []assetFile{ep}}
	if body == nil {
		rec.paths = prev.paths // 304: the same list
	} else if rec.paths, err = parseEntrypoints(body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", entrypointsPath, err)
	}
	h := sha256.New()
	h.Write([]byte("mosparo-lb fingerprint 1\n"))
	for _, p := range rec.paths {
		f, _, err := fetchAsset(ctx, cl, address, host, p, maxAssetBody, prev.file(p))
		if err != nil {
			return nil, err
		}
		rec.files = append(rec.files, f)
		fmt.Fprintf(h, "%s %x\n", p, f.sum)
	}
	copy(rec.fp[:], h.Sum(nil))
	return rec, nil
}

// fetchAsset GETs one file, conditionally when prev has validators, and
// returns its record and body (nil on 304, where prev's hash stands).
func fetchAsset(ctx context.Context, cl AssetClient, address, host, path string, limit int, prev *assetFile) (assetFile, []byte, error) {
	r := AssetRequest{Address: address, Host: host, Path: path, MaxBody: limit}
	if prev != nil {
		r.IfNoneMatch, r.IfModifiedSince = prev.etag, prev.lastModified
	}
	a, err := cl.GetAsset(ctx, r)
	if err != nil {
		return assetFile{}, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	switch {
	case a.Status == 200:
	case a.Status == 304 && prev != nil && (prev.etag != "" || prev.lastModified != ""):
		return *prev, nil, nil
	case a.Status == 304:
		return assetFile{}, nil, fmt.Errorf("GET %s: %w: status 304 to a request that was not conditional", path, ErrAssetAnswer)
	case a.Status >= 300 && a.Status < 400:
		// try_files hands a missing file to PHP, and a node with an
		// unfinished update redirects every GET (FACTS 11.2).
		return assetFile{}, nil, fmt.Errorf("GET %s: %w: %d to %.100q", path, ErrAssetAnswer, a.Status, a.Location)
	case a.Status == 404:
		return assetFile{}, nil, fmt.Errorf("GET %s: %w: 404 (no Webpack Encore build in public/build, or the web server does not serve it)", path, ErrAssetAnswer)
	default:
		return assetFile{}, nil, fmt.Errorf("GET %s: %w: status %d", path, ErrAssetAnswer, a.Status)
	}
	f := assetFile{path: path, sum: sha256.Sum256(a.Body)}
	// Hostile or broken validators are not sent back; without them the
	// next fingerprint fetches the file whole.
	if validValidator(a.ETag) {
		f.etag = a.ETag
	}
	if validValidator(a.LastModified) {
		f.lastModified = a.LastModified
	}
	return f, a.Body, nil
}

// parseEntrypoints returns the files Encore's entrypoints.json names, each
// once, sorted: {"entrypoints": {"<entry>": {"js": [...], "css": [...]}}}.
// Only plain paths under /build/ are accepted: a fingerprint reads the
// node's own files, never another host's.
func parseEntrypoints(body []byte) ([]string, error) {
	var doc struct {
		Entrypoints map[string]map[string][]string `json:"entrypoints"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEntrypoints, err)
	}
	var paths []string
	for _, entry := range doc.Entrypoints {
		for _, files := range entry {
			for _, p := range files {
				if !validAssetPath(p) {
					return nil, fmt.Errorf("%w: file %.100q is not a plain path under /build/", ErrEntrypoints, p)
				}
				paths = append(paths, p)
			}
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	switch {
	case len(paths) == 0:
		return nil, fmt.Errorf("%w: it names no file", ErrEntrypoints)
	case len(paths) > maxAssetFiles:
		return nil, fmt.Errorf("%w: %d files, at most %d are fingerprinted", ErrEntrypoints, len(paths), maxAssetFiles)
	}
	return paths, nil
}

// validAssetPath accepts /build/<name> with letters, digits, "._-~/", no
// empty or "." segment and no ".." anywhere (no built name has one).
func validAssetPath(p string) bool {
	if len(p) > maxAssetPath || !strings.HasPrefix(p, "/build/") || strings.Contains(p, "..") {
		return false
	}
	for _, seg := range strings.Split(p[len("/build/"):], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~') {
				return false
			}
		}
	}
	return true
}

// validValidator accepts an ETag or Last-Modified worth sending back:
// printable ASCII, bounded.
func validValidator(v string) bool {
	if v == "" || len(v) > maxValidator {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}
