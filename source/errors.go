package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/source-klaviyo/source-klaviyo/source/emit"
	"github.com/source-klaviyo/source-klaviyo/source/klaviyo"
	"github.com/source-klaviyo/source-klaviyo/source/maps"
)

// Error is a failure with the Airbyte failure type that tells the platform whose fault it is: config_error (the
// user must change something), transient_error (retrying later should work), system_error (our bug).
type Error struct {
	Failure emit.FailureType
	Msg     string
	Err     error
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return &Error{Failure: emit.ConfigError, Msg: fmt.Sprintf(format, args...)}
}

func transientErrorf(format string, args ...any) error {
	return &Error{Failure: emit.TransientError, Msg: fmt.Sprintf(format, args...)}
}

// failureType classifies any error the engine meets. Klaviyo's own refusals (bad key, missing scope, bad request)
// are the user's to fix; rate limits, outages and interruptions clear on retry; anything else is ours.
func failureType(err error) emit.FailureType {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	var me *maps.Error
	if errors.As(err, &me) {
		// A stream map the user wrote failed on a record: theirs to fix.
		return emit.ConfigError
	}
	var ke *klaviyo.Error
	if errors.As(err, &ke) {
		switch ke.Kind {
		case klaviyo.KindAuth, klaviyo.KindScope, klaviyo.KindBadRequest:
			return emit.ConfigError
		case klaviyo.KindRateLimited, klaviyo.KindTransient:
			return emit.TransientError
		}
		return emit.SystemError
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return emit.TransientError
	}
	return emit.SystemError
}
