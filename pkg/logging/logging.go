// Package logging builds the structured logger (zap behind logr) of Sluice's
// commands from their --log-level and --log-encoding flags.
package logging

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Validate reports every invalid value of --log-level and --log-encoding.
func Validate(level, encoding string) error {
	var errs []error
	if _, err := zapLevel(level); err != nil {
		errs = append(errs, err)
	}
	if encoding != "json" && encoding != "console" {
		errs = append(errs, fmt.Errorf("--log-encoding must be json or console, not %q", encoding))
	}
	return errors.Join(errs...)
}

// New builds the logger from values that passed Validate.
func New(level, encoding string) logr.Logger {
	l, _ := zapLevel(level) // validated before
	opts := []zap.Opts{zap.Level(l), zap.StacktraceLevel(zapcore.PanicLevel)}
	if encoding == "console" {
		opts = append(opts, zap.ConsoleEncoder())
	} else {
		opts = append(opts, zap.JSONEncoder())
	}
	return zap.New(opts...)
}

func zapLevel(level string) (zapcore.Level, error) {
	switch strings.ToLower(level) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return 0, fmt.Errorf("--log-level must be debug, info or error, not %q", level)
}
