package search

import "fmt"

// Error is a search-grammar or page-token error. Its Message follows
// MLflow's wording; the HTTP layer reports every Error as 400
// INVALID_PARAMETER_VALUE.
type Error struct {
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Message }

func errorf(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}
