package engine

// PanicError is the error the engine makes of a recovered panic of v in
// what ("handler" or "dead letter").
func PanicError(what string, v any) error { return &panicError{what: what, v: v} }
