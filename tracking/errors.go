package tracking

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode is one of MLflow's error code names as they appear on the wire.
type ErrorCode string

// The error codes the tracking server emits.
const (
	InvalidParameterValue  ErrorCode = "INVALID_PARAMETER_VALUE"
	BadRequest             ErrorCode = "BAD_REQUEST"
	ResourceAlreadyExists  ErrorCode = "RESOURCE_ALREADY_EXISTS"
	ResourceDoesNotExist   ErrorCode = "RESOURCE_DOES_NOT_EXIST"
	EndpointNotFound       ErrorCode = "ENDPOINT_NOT_FOUND"
	PermissionDenied       ErrorCode = "PERMISSION_DENIED"
	Unauthenticated        ErrorCode = "UNAUTHENTICATED"
	InvalidState           ErrorCode = "INVALID_STATE"
	InternalError          ErrorCode = "INTERNAL_ERROR"
	NotImplemented         ErrorCode = "NOT_IMPLEMENTED"
	TemporarilyUnavailable ErrorCode = "TEMPORARILY_UNAVAILABLE"
	RequestLimitExceeded   ErrorCode = "REQUEST_LIMIT_EXCEEDED"
)

// HTTPStatus maps an error code to the status MLflow's server answers with.
func (c ErrorCode) HTTPStatus() int {
	switch c {
	case InvalidParameterValue, BadRequest, ResourceAlreadyExists:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case PermissionDenied:
		return http.StatusForbidden
	case ResourceDoesNotExist, EndpointNotFound:
		return http.StatusNotFound
	case RequestLimitExceeded:
		return http.StatusTooManyRequests
	case NotImplemented:
		return http.StatusNotImplemented
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case ResourceExhausted:
		return http.StatusInsufficientStorage // see ResourceExhausted
	default:
		return http.StatusInternalServerError
	}
}

// Error is an MLflow API error: a code and a human-readable message. It is
// what every layer returns for a failure the client should see; anything
// else reaching the HTTP layer is reported as INTERNAL_ERROR without detail.
type Error struct {
	Code    ErrorCode `json:"error_code"`
	Message string    `json:"message"`
}

// Error implements the error interface.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns the *Error inside err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code ErrorCode) bool {
	e, ok := AsError(err)
	return ok && e.Code == code
}
