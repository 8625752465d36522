package kafkatest

import "errors"

var (
	// ErrBadArgument is returned (wrapped, with the argument named) for an
	// empty topic name, a partition count below 1, a negative record count
	// (Produce accepts 0 and writes nothing; OpenTxn needs at least 1), and
	// the like.
	ErrBadArgument = errors.New("kafkatest: bad argument")
	// ErrClosed is returned by operations on a closed Cluster.
	ErrClosed = errors.New("kafkatest: cluster closed")
)
