package churn

import "errors"

var (
	// ErrBadConfig is returned (wrapped, with the field named) by Run for a
	// Config that cannot describe a run, and by MemberMain for a member
	// environment that does not decode.
	ErrBadConfig = errors.New("churn: bad config")
	// ErrMember is returned (wrapped) by Run when a member process cannot be
	// started.
	ErrMember = errors.New("churn: member")
)
