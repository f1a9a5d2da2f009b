package daemon

import (
	"fmt"
	"os"
	"time"

	"github.com/mosparo-lb/mosparo-lb/configs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Loggers are the process logger and the access log, which is buffered so
// a line per request costs no write system call; Sync flushes it.
type Loggers struct {
	Main   *zap.Logger
	Access *zap.Logger // nil when log.access_log is false
	buf    *zapcore.BufferedWriteSyncer
}

// NewLoggers builds loggers from the log: section: JSON in production,
// console for the demo.
func NewLoggers(c configs.Log) (*Loggers, error) {
	var lvl zapcore.Level
	if err := lvl.Set(c.Level); err != nil {
		return nil, fmt.Errorf("daemon: log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == configs.LogConsole {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	l := &Loggers{Main: zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl))}
	if c.AccessLog != nil && *c.AccessLog {
		l.buf = &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(os.Stdout), Size: 256 << 10, FlushInterval: time.Second}
		l.Access = zap.New(zapcore.NewCore(enc, l.buf, zapcore.InfoLevel)).Named("access")
	}
	return l, nil
}

// Sync flushes buffered lines; call it before exit.
func (l *Loggers) Sync() {
	_ = l.Main.Sync()
	if l.buf != nil {
		_ = l.buf.Stop()
	}
}

// Logger is the process logger, for what the command around the daemon logs
// (an upgrade).
func (d *Daemon) Logger() *zap.Logger { return d.log }
