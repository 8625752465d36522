package kafkago

// This file holds the per-partition fetch loop.
//
// Why raw Fetch requests through kafka-go's Transport rather than a Reader
// (without GroupID) per partition or Conn.ReadBatch: kafka-go v0.4.51 hands
// transaction markers to the application as if they were messages and does
// not drop aborted records under ReadCommitted (segmentio/kafka-go#1332),
// and its Reader hides batch boundaries, so a consumer built on it cannot
// tell a gap from a message. The protocol-level response keeps what is
// needed: each batch's control bit, producer id and transactional bit, the
// aborted transactions list, and the high watermark. The Transport still
// does the routing to the partition leader, connection pooling, API
// version negotiation and decompression. One long-polling request per
// partition at a time; the pool opens a connection per concurrent request.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

// fetchLoop fetches p from its start until ctx ends, delivering messages to
// the session and declaring every offset it passes without a message a gap.
// It stores the time of each fetch response in fetchedAt (unix nanos).
func (g *groupRun) fetchLoop(ctx context.Context, sess *engine.Session[kafka.Message], p *engine.Part, fetchedAt *atomic.Int64) {
	log := g.c.opts.Logger
	tp := p.TP
	backoff := g.newBackoff()
	var failing time.Time // since when fetches fail in a row (zero: the last one succeeded)
	var b batch           // reused from response to response
	// The first fetches are small and each successful one doubles the
	// size up to FetchMaxBytes (engine.FetchRamp): the first message of an
	// assignment comes after a 64 KiB response, not a FetchMaxBytes one.
	ramp := engine.NewFetchRamp(g.c.opts.FetchMaxBytes)
	for ctx.Err() == nil {
		// The engine decides when the partition is fetched: not while its
		// window is full or it is over its share of MaxBufferedBytes.
		if err := g.eng.WaitFlow(ctx, p); err != nil {
			return
		}
		// Fetch from the first offset not offered yet: everything below it
		// was offered or declared a gap.
		offset := p.Next()
		part, err := g.fetch(ctx, tp, offset, ramp.Size())
		if err == nil && part.ErrorCode != 0 {
			err = kafka.Error(part.ErrorCode)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if g.failOn(err, fmt.Sprintf("fetching %s[%d]", tp.Topic, tp.Partition)) {
				return
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				if to, ok := g.outOfRange(ctx, tp, offset); ok {
					if _, err := sess.Offer(p, nil, nil, to); err != nil {
						return
					}
					continue
				}
			}
			// A leader that just moved, or partitions just added that the
			// transport's metadata (refreshed within 2s) does not know yet,
			// fail a few fetches in normal operation: Debug until the
			// failure persists.
			if failing.IsZero() {
				failing = time.Now()
			}
			level := slog.LevelDebug
			if time.Since(failing) >= warnAfter {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "kafkago: fetch failed, retrying", "topic", tp.Topic, "partition", tp.Partition,
				"offset", offset, "failing_for", time.Since(failing).Round(time.Millisecond), "error", err)
			backoff.Wait(ctx)
			continue
		}
		failing = time.Time{}
		backoff.Reset()
		ramp.Grow()
		fetchedAt.Store(time.Now().UnixNano())
		p.SetLogEnd(part.HighWatermark)
		if g.c.cfg.onFetch != nil {
			g.c.cfg.onFetch(tp, offset, part)
		}
		next, err := g.deliver(sess, p, offset, part, &b)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, watermark.ErrClosed) || errors.Is(err, engine.ErrStopped) {
				return // the generation or Run is ending
			}
			// A record that cannot be read, or the like: refetch from the
			// first offset not yet offered, after a backoff. What was
			// offered stays offered; the rest comes again.
			log.Error("kafkago: delivering fetched messages failed, refetching", "topic", tp.Topic, "partition", tp.Partition,
				"offset", p.Next(), "error", err)
			backoff.Wait(ctx)
			continue
		}
		// Everything below next was in this response: the offsets without a
		// message (markers, aborted or compacted records) are gaps, up to
		// and including a marker at the very end of the partition.
		if next > offset {
			if _, err := sess.Offer(p, nil, nil, next); err != nil {
				return
			}
		} else if part.HighWatermark > offset && part.LastStableOffset > offset {
			// Data exists past offset but this response moved nothing: a
			// record batch whose records at and after offset were all
			// compacted away (kafka-go's decoder drops the batch header's
			// lastOffsetDelta, so we cannot jump past it). Do not spin; log
			// and retry with backoff. This partition stays stuck until the
			// log changes (see the package doc).
			log.Warn("kafkago: fetch made no progress, retrying", "topic", tp.Topic, "partition", tp.Partition,
				"offset", offset, "high_watermark", part.HighWatermark)
			backoff.Wait(ctx)
		}
	}
}

// refreshLogEnds keeps the LogEnd (and so the Lag) of every partition of
// fetchedAt fresh at each commit tick while its fetch loop is not
// fetching (it waits for room in a full window, or for a retry): it reads
// the high watermark of those that had no fetch response for a commit
// interval plus a long poll. Each fetch response sets it otherwise.
func (g *groupRun) refreshLogEnds(ctx context.Context, fetchedAt map[*engine.Part]*atomic.Int64) {
	opts := g.c.opts
	t := time.NewTicker(opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		stale := now.Add(-opts.CommitInterval - opts.FetchMaxWait).UnixNano()
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		var parts []*engine.Part
		for p, at := range fetchedAt {
			if at.Load() < stale {
				parts = append(parts, p)
				req.Topics[p.TP.Topic] = append(req.Topics[p.TP.Topic], kafka.LastOffsetOf(int(p.TP.Partition)))
			}
		}
		if len(parts) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, opts.RequestTimeout)
		r, err := g.client.ListOffsets(rctx, req)
		cancel()
		if err != nil {
			opts.Logger.Debug("kafkago: reading log ends for the lag", "group", g.c.group, "error", err)
			continue
		}
		for _, p := range parts {
			po, err := partitionOffsets(r, p.TP)
			// A fetch response since is fresher: keep it.
			if err == nil && fetchedAt[p].Load() < now.UnixNano() {
				p.SetLogEnd(po.LastOffset)
			}
		}
	}
}

// warnAfter is how long fetches of a partition fail in a row before the
// failure is logged at Warn rather than Debug: longer than the transport's
// metadata refresh (2s), which ends the failures a rebalance or a leader
// move causes.
const warnAfter = 5 * time.Second

// fetch sends one Fetch request for tp at offset, for at most maxBytes (the
// broker returns at least one record batch, however large).
func (g *groupRun) fetch(ctx context.Context, tp TopicPartition, offset int64, maxBytes int) (*fetchAPI.ResponsePartition, error) {
	opts := g.c.opts
	iso := int8(kafka.ReadUncommitted)
	if opts.ReadCommitted {
		iso = int8(kafka.ReadCommitted)
	}
	req := &fetchAPI.Request{
		ReplicaID:      -1,
		MaxWaitTime:    int32(opts.FetchMaxWait / time.Millisecond),
		MinBytes:       1,
		MaxBytes:       int32(maxBytes),
		IsolationLevel: iso,
		SessionID:      -1,
		SessionEpoch:   -1,
		Topics: []fetchAPI.RequestTopic{{
			Topic: tp.Topic,
			Partitions: []fetchAPI.RequestPartition{{
				Partition:          tp.Partition,
				CurrentLeaderEpoch: -1,
				FetchOffset:        offset,
				LogStartOffset:     -1,
				PartitionMaxBytes:  int32(maxBytes),
			}},
		}},
	}
	rctx, cancel := context.WithTimeout(ctx, opts.FetchMaxWait+opts.RequestTimeout)
	defer cancel()
	m, err := g.client.Transport.RoundTrip(rctx, g.client.Addr, req)
	if err != nil {
		return nil, err
	}
	res, ok := m.(*fetchAPI.Response)
	if !ok {
		return nil, fmt.Errorf("fetch: unexpected response %T", m)
	}
	if res.ErrorCode != 0 {
		return nil, kafka.Error(res.ErrorCode)
	}
	for i := range res.Topics {
		if res.Topics[i].Topic != tp.Topic {
			continue
		}
		for j := range res.Topics[i].Partitions {
			if res.Topics[i].Partitions[j].Partition == tp.Partition {
				return &res.Topics[i].Partitions[j], nil
			}
		}
	}
	return nil, fmt.Errorf("fetch %s[%d]: partition missing from the response", tp.Topic, tp.Partition)
}

// outOfRange finds where to resume after OffsetOutOfRange: the log start
// (records deleted by retention) when offset is below it. An offset above
// the log end (a truncated or recreated log) is not resumed: moving back
// would break the order the tracker relies on; it is logged and retried.
func (g *groupRun) outOfRange(ctx context.Context, tp TopicPartition, offset int64) (int64, bool) {
	rctx, cancel := context.WithTimeout(ctx, g.c.opts.RequestTimeout)
	defer cancel()
	r, err := g.client.ListOffsets(rctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		tp.Topic: {kafka.FirstOffsetOf(int(tp.Partition)), kafka.LastOffsetOf(int(tp.Partition))},
	}})
	if err != nil {
		return 0, false
	}
	for _, po := range r.Topics[tp.Topic] {
		if po.Partition == int(tp.Partition) && po.Error == nil && po.FirstOffset > offset {
			g.c.opts.Logger.Warn("kafkago: offset out of range, skipping to log start",
				"topic", tp.Topic, "partition", tp.Partition, "offset", offset, "log_start", po.FirstOffset)
			return po.FirstOffset, true
		}
	}
	return 0, false
}

// batchMax bounds the messages handed to the session at once.
const batchMax = 256

// batch gathers the messages of a fetch response for Offer (one
// publication and one scheduler lock per run rather than per message).
// Fetch loop only.
type batch struct {
	offs []int64
	msgs []kafka.Message
}

func (b *batch) add(m kafka.Message) {
	b.offs = append(b.offs, m.Offset)
	b.msgs = append(b.msgs, m)
}

// flush offers the gathered messages to the engine (which keeps what does
// not fit in the window) and empties b; what it could not offer (revoked,
// stopped) is fetched again by the next owner.
func (b *batch) flush(sess *engine.Session[kafka.Message], p *engine.Part) error {
	if len(b.offs) == 0 {
		return nil
	}
	_, err := sess.Offer(p, b.offs, b.msgs, 0)
	clear(b.msgs) // release the payloads
	b.offs, b.msgs = b.offs[:0], b.msgs[:0]
	return err
}

// deliver hands the messages of one fetch response at or above offset to
// the session in runs of up to batchMax (b gathers them), dropping control
// batches and (read committed) aborted transactions, and returns one past
// the highest offset the response covered.
func (g *groupRun) deliver(sess *engine.Session[kafka.Message], p *engine.Part, offset int64, part *fetchAPI.ResponsePartition, b *batch) (next int64, err error) {
	defer func() {
		// What was read is delivered, also before an error: the refetch
		// starts after it.
		if ferr := b.flush(sess, p); err == nil {
			err = ferr
		}
	}()
	next = offset
	var batches []protocol.RecordReader
	switch rs := part.RecordSet.Records.(type) {
	case nil:
	case *protocol.RecordStream:
		batches = rs.Records
	default:
		batches = []protocol.RecordReader{rs}
	}
	readCommitted := g.c.opts.ReadCommitted
	var aborted []fetchAPI.ResponseTransaction
	var abortedPIDs map[int64]bool
	if readCommitted && len(part.AbortedTransactions) > 0 {
		aborted = slices.Clone(part.AbortedTransactions)
		slices.SortFunc(aborted, func(a, b fetchAPI.ResponseTransaction) int {
			return int(min(max(a.FirstOffset-b.FirstOffset, -1), 1))
		})
		abortedPIDs = map[int64]bool{}
	}
	// reachAborted starts the aborted transactions that begin at or before
	// base. A producer's transaction begins with one of its batches, so a
	// batch of an aborted transaction has a base at or after its first
	// offset (the Java client's algorithm, with the base offset).
	reachAborted := func(base int64) {
		for len(aborted) > 0 && aborted[0].FirstOffset <= base {
			abortedPIDs[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
	}
	for _, rb := range batches {
		switch rb := rb.(type) {
		case *protocol.ControlBatch:
			if readCommitted {
				reachAborted(rb.BaseOffset)
			}
			for {
				cr, err := rb.ReadControlRecord()
				if err != nil {
					break
				}
				next = max(next, cr.Offset+1)
				if cr.Type == 0 && abortedPIDs != nil { // abort marker ends the producer's aborted transaction
					delete(abortedPIDs, rb.ProducerID)
				}
			}
		case *protocol.RecordBatch:
			skip := false
			if readCommitted && rb.Attributes.Transactional() {
				reachAborted(rb.BaseOffset)
				skip = abortedPIDs[rb.ProducerID]
			}
			n, err := g.deliverRecords(sess, p, offset, part.HighWatermark, rb, skip, b)
			next = max(next, n)
			if err != nil {
				return next, err
			}
		default:
			n, err := g.deliverRecords(sess, p, offset, part.HighWatermark, rb, false, b)
			next = max(next, n)
			if err != nil {
				return next, err
			}
		}
	}
	return next, nil
}

// deliverRecords adds the records of rb at or above offset to b (unless
// skip), delivering b whenever it is full, and returns one past the highest
// offset it read.
func (g *groupRun) deliverRecords(sess *engine.Session[kafka.Message], p *engine.Part, offset, hwm int64, rb protocol.RecordReader, skip bool, b *batch) (int64, error) {
	next := offset
	for {
		r, err := rb.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return next, nil
			}
			return next, fmt.Errorf("reading record: %w", err)
		}
		if r.Offset < offset || skip {
			next = max(next, r.Offset+1)
			closeBytes(r)
			continue
		}
		key, kerr := protocol.ReadAll(r.Key)
		value, verr := protocol.ReadAll(r.Value)
		closeBytes(r)
		if err := errors.Join(kerr, verr); err != nil {
			return next, fmt.Errorf("reading record %d: %w", r.Offset, err)
		}
		if len(b.offs) == batchMax {
			if err := b.flush(sess, p); err != nil {
				return next, err
			}
		}
		b.add(kafka.Message{
			Topic:         p.TP.Topic,
			Partition:     int(p.TP.Partition),
			Offset:        r.Offset,
			HighWaterMark: hwm,
			Key:           key,
			Value:         value,
			Headers:       r.Headers,
			Time:          r.Time,
		})
		next = r.Offset + 1
	}
}

func closeBytes(r *protocol.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}
