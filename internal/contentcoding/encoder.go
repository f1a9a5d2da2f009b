package contentcoding

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"
)

// Level bounds, as fasthttp names them (it ships both encoders).
const (
	GzipMinLevel   = fasthttp.CompressBestSpeed
	GzipMaxLevel   = fasthttp.CompressBestCompression
	BrotliMinLevel = fasthttp.CompressBrotliBestSpeed
	BrotliMaxLevel = fasthttp.CompressBrotliBestCompression
	// BrotliMaxStreamLevel is the highest brotli level an Encoder takes:
	// from 10 on, brotli searches so long (and go-brrr starts helper
	// goroutines) that it belongs in AppendBest, never per request.
	BrotliMaxStreamLevel = 9
)

// Encoder compresses whole bodies in one coding at one level. Its state
// (gzip's or brotli's tables) is pooled, so after warm-up Append allocates
// nothing but what dst may have to grow by. Safe for concurrent use.
type Encoder struct {
	coding Coding
	level  int
	pool   sync.Pool // *stream
}

// stream is one pooled encoder state with the writer it appends to.
type stream struct {
	out appendWriter
	gz  *gzip.Writer
	br  *brrr.Writer
}

// NewEncoder returns an Encoder for c (Gzip or Brotli) at level: 1..9 for
// gzip, 0..BrotliMaxStreamLevel for brotli.
func NewEncoder(c Coding, level int) (*Encoder, error) {
	switch {
	case c == Gzip && (level < GzipMinLevel || level > GzipMaxLevel):
		return nil, fmt.Errorf("contentcoding: gzip level %d is not %d..%d", level, GzipMinLevel, GzipMaxLevel)
	case c == Brotli && (level < BrotliMinLevel || level > BrotliMaxStreamLevel):
		return nil, fmt.Errorf("contentcoding: brotli level %d is not %d..%d", level, BrotliMinLevel, BrotliMaxStreamLevel)
	case c != Gzip && c != Brotli:
		return nil, fmt.Errorf("contentcoding: no encoder for %s", c)
	}
	return &Encoder{coding: c, level: level}, nil
}

// Coding is what the Encoder produces.
func (e *Encoder) Coding() Coding { return e.coding }

// Append appends the whole compressed form of src to dst.
func (e *Encoder) Append(dst, src []byte) []byte {
	s, _ := e.pool.Get().(*stream)
	if s == nil {
		s = &stream{}
	}
	s.out.b = dst
	switch e.coding {
	case Gzip:
		if s.gz == nil {
			// The level was checked by NewEncoder.
			s.gz, _ = gzip.NewWriterLevel(&s.out, e.level)
		} else {
			s.gz.Reset(&s.out)
		}
		_, _ = s.gz.Write(src) // appendWriter never fails
		_ = s.gz.Close()
	case Brotli:
		if s.br == nil {
			s.br, _ = brrr.NewWriter(&s.out, e.level)
		}
		// Always Reset: a Writer that was never Reset gives its state
		// back to go-brrr's pool on Close, and a pooled one keeps it.
		s.br.ResetWithSizeHint(&s.out, uint(len(src)))
		_, _ = s.br.Write(src)
		_ = s.br.Close()
	}
	dst = s.out.b
	s.out.b = nil
	e.pool.Put(s)
	return dst
}

// AppendBest appends the compressed form of src at c's best level (gzip 9,
// brotli 11), for content compressed once and served many times. It costs
// milliseconds per 10 KiB: never call it per request.
func AppendBest(dst, src []byte, c Coding) []byte {
	switch c {
	case Gzip:
		w := appendWriter{b: dst}
		zw, _ := gzip.NewWriterLevel(&w, GzipMaxLevel)
		_, _ = zw.Write(src)
		_ = zw.Close()
		return w.b
	case Brotli:
		// The one-shot API runs on the calling goroutine only (a Writer
		// at level 11 starts helpers).
		out, err := brrr.Compress(src, BrotliMaxLevel)
		if err != nil {
			return dst // cannot happen: the level is valid
		}
		return append(dst, out...)
	}
	return append(dst, src...)
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
