package watermark

import "errors"

var (
	// ErrOutOfOrder is returned by Track for an offset that is not above the
	// last tracked or skipped offset (or is below the partition's start), and
	// by Restore after the first Track.
	ErrOutOfOrder = errors.New("watermark: offset out of order")

	// ErrWindowFull is returned by Track and Skip when the offset lies a window
	// or more beyond the commit point: back-pressure. Wait with WaitRoom or use
	// TrackWait; nothing was changed.
	ErrWindowFull = errors.New("watermark: window full")

	// ErrClosed is returned by Track, Skip and Ack after Close, and by the
	// waiting methods when the partition is closed while they wait.
	ErrClosed = errors.New("watermark: partition closed")

	// ErrNotTracked is returned by Ack for an offset that was never tracked:
	// at or above the high mark, or negative. Nothing was changed.
	ErrNotTracked = errors.New("watermark: offset not tracked")

	// ErrRestored is returned by Track for an offset that the commit metadata
	// given to Restore marks as already done. The offset is tracked and counts
	// as acked: do not hand it to the handler and do not ack it.
	ErrRestored = errors.New("watermark: offset already done (restored from commit metadata)")
)
