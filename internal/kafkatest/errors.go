package kafkatest

import "errors"

var (
	// ErrBadArgument is returned (wrapped, with the argument named) for an
	// empty topic name, a non-positive partition or record count, and the like.
	ErrBadArgument = errors.New("kafkatest: bad argument")
	// ErrClosed is returned by operations on a closed Cluster.
	ErrClosed = errors.New("kafkatest: cluster closed")
)
