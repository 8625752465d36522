package fuzz

// This file is the reference model of a watermark.Partition that the fuzz
// targets and the watermark package's own randomized test compare against.

import (
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

// PartitionModel is the plain, obviously correct reference of a
// watermark.Partition: the set of tracked, unacked offsets, the high mark and
// the offsets restored from commit metadata. Not safe for concurrent use.
type PartitionModel struct {
	Pending  *ordset.Set // tracked and not acked
	Restored *ordset.Set // restored from commit metadata (Track answers ErrRestored)
	High     int64       // one past the highest tracked or skipped offset
	Start    int64
	Window   int64
	Closed   bool
}

// NewPartitionModel returns the model of watermark.NewPartition(start,
// watermark.WithWindow(window)).
func NewPartitionModel(start, window int64) *PartitionModel {
	return &PartitionModel{Pending: ordset.New(), Restored: ordset.New(), High: start, Start: start, Window: window}
}

// Commit returns the commit point: the smallest pending offset, or the high
// mark when nothing is pending.
func (m *PartitionModel) Commit() int64 {
	if v, ok := m.Pending.Min(); ok {
		return v
	}
	return m.High
}

// Fits reports whether last fits in the window: always when nothing is
// pending (the window then jumps over a gap), else within Window of the
// commit point.
func (m *PartitionModel) Fits(last int64) bool {
	return m.Pending.Len() == 0 || last-m.Commit() < m.Window
}

// Track is the model of Partition.Track.
func (m *PartitionModel) Track(o int64) error {
	switch {
	case m.Closed:
		return watermark.ErrClosed
	case o < m.High:
		return watermark.ErrOutOfOrder
	case !m.Fits(o):
		return watermark.ErrWindowFull
	}
	m.High = o + 1
	if m.Restored.Contains(o) {
		return watermark.ErrRestored
	}
	m.Pending.Add(o)
	return nil
}

// TrackBatch is the model of Partition.TrackBatch: Track of each offset in
// turn, stopping at the first error, whose index it returns (an offset
// answered ErrRestored is tracked and done).
func (m *PartitionModel) TrackBatch(offsets []int64) (int, error) {
	for i, o := range offsets {
		if err := m.Track(o); err != nil {
			return i, err
		}
	}
	return len(offsets), nil
}

// TrackRange is the model of Partition.TrackRange: TrackBatch of lo, lo+1,
// ..., hi-1.
func (m *PartitionModel) TrackRange(lo, hi int64) (int64, error) {
	for o := lo; o < hi; o++ {
		if err := m.Track(o); err != nil {
			return o - lo, err
		}
	}
	return max(hi-lo, 0), nil
}

// Skip is the model of Partition.Skip.
func (m *PartitionModel) Skip(to int64) error {
	switch {
	case m.Closed:
		return watermark.ErrClosed
	case to <= m.High:
		return nil
	case !m.Fits(to - 1):
		return watermark.ErrWindowFull
	}
	m.High = to
	return nil
}

// Ack is the model of Partition.Ack.
func (m *PartitionModel) Ack(o int64) error {
	switch {
	case m.Closed:
		return watermark.ErrClosed
	case o >= m.High || o < 0:
		return watermark.ErrNotTracked
	}
	m.Pending.Remove(o)
	return nil
}
