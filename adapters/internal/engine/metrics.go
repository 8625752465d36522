package engine

// This file holds the engine's OpenTelemetry metrics. Most are read at
// collection time from what the engine tracks anyway (Part's atomics and
// its watermark); the hot path adds one atomic add per run of messages a
// worker takes (runq.next: the consumed count) and, when a reader collects
// it, the duration of every handler call (two clock reads and a Record).
// Without a reader (the no-op provider) a call costs one Enabled check.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// MeterName is the instrumentation scope of the engine's instruments.
const MeterName = "github.com/inorder/inorder"

// Instrument names. The first two are the OpenTelemetry messaging semantic
// conventions'; the others are this module's, under "inorder.". Partition
// instruments carry messaging.system ("kafka"), messaging.consumer.group.name
// (when the group is known), messaging.destination.name (the topic) and
// messaging.destination.partition.id.
const (
	// MetricConsumed counts the messages workers take for a handler call,
	// that is every attempt: a message retried twice counts 3, and each
	// retry of a failed dead letter counts too; restored messages do not
	// count. For messages, see MetricFinished. Counter, {message}.
	MetricConsumed = "messaging.client.consumed.messages"
	// MetricFinished counts messages done with, once each: acked after
	// the handler succeeded, after the dead letter took them, or after a
	// failure the LogAndAck policy acks. Counter, {message}.
	MetricFinished = "inorder.messages.finished"
	// MetricProcessDuration is the handler's duration, in seconds, with
	// error.type when it failed or panicked: the Go type of the handler's
	// error as ErrorType names it (Permanent looked through, e.g.
	// "*orders.RejectedError"). Histogram of every handler call: its count
	// equals MetricConsumed, but with a batch handler (RunBatch), where it
	// has one observation per batch call, under the partition of the
	// batch's first message.
	MetricProcessDuration = "messaging.process.duration"
	// MetricBatchSize is the number of messages of each batch handler call
	// (RunBatch). Histogram, {message}, with messaging.system and the
	// group.
	MetricBatchSize = "inorder.batch.size"

	// MetricCommitPoint: every offset below it is handled (or a gap).
	// Gauge, {offset}.
	MetricCommitPoint = "inorder.partition.commit_point"
	// MetricCommitted: the last offset the broker accepted from this
	// member. Gauge, {offset}.
	MetricCommitted = "inorder.partition.committed"
	// MetricLag: log end minus commit point; not reported until a fetch saw
	// the log end. Gauge, {message}.
	MetricLag = "inorder.partition.lag"
	// MetricPending: fetched, not yet handled (in flight). Gauge, {message}.
	MetricPending = "inorder.partition.pending"
	// MetricOldestPendingAge: how long the commit point has not moved while
	// messages are pending (PartitionStats.Stuck), in seconds; 0 when
	// nothing is pending. Gauge.
	MetricOldestPendingAge = "inorder.partition.oldest_pending_age"
	// MetricPaused: 1 while the engine wants the partition paused (its
	// window is full, or it is over its share of MaxBufferedBytes: see
	// flow.go), else 0. Gauge.
	MetricPaused = "inorder.partition.paused"
	// MetricMetadataSize: bytes of commit metadata in the last accepted
	// commit. Gauge, By.
	MetricMetadataSize = "inorder.partition.metadata.size"
	// MetricCommits counts commits the broker accepted, per partition.
	// Counter, {commit}.
	MetricCommits = "inorder.commits"
	// MetricCommitErrors counts partitions whose commit failed (the request
	// failed or the broker refused that partition). Counter, {commit}.
	MetricCommitErrors = "inorder.commit.errors"
	// MetricCommitDuration is the duration of commit requests, in seconds,
	// with error.type "_OTHER" when the request failed. Histogram; group
	// attributes only.
	MetricCommitDuration = "inorder.commit.duration"
	// MetricMetadataMisses counts commits whose done set did not fit
	// MetadataMaxBytes. Counter, {commit}.
	MetricMetadataMisses = "inorder.metadata.misses"
	// MetricRestored counts fetched messages skipped because the commit
	// metadata marked them done. Counter, {message}.
	MetricRestored = "inorder.messages.restored"
	// MetricHandlerErrors counts handler errors and panics. Counter,
	// {message}.
	MetricHandlerErrors = "inorder.handler.errors"
	// MetricRetries counts failed handler calls followed by another attempt
	// (Config.Retry). Counter, {retry}.
	MetricRetries = "inorder.handler.retries"
	// MetricDeadLettered counts messages acked after the dead letter took
	// them (Config.DeadLetter). Counter, {message}.
	MetricDeadLettered = "inorder.messages.dead_lettered"
	// MetricRebalancePartitions counts partitions gained and given up, with
	// inorder.rebalance.event "assigned", "revoked" (including at shutdown
	// and, for kafka-go, at the end of each generation) or "lost". Counter,
	// {partition}; group attributes only.
	MetricRebalancePartitions = "inorder.rebalance.partitions"
)

// durationBuckets are the semantic conventions' buckets for
// messaging.process.duration, below 5ms refined: in-process handlers are
// often far below a millisecond.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
}

// ForGroup returns c with the consumer group set, for the metrics'
// attributes. The adapters call it in Run.
func (c Config) ForGroup(group string) Config {
	c.Group = group
	return c
}

var bg = context.Background()

// metrics is an Engine's instruments and the per-partition state its
// collection callback reads.
type metrics struct {
	procDur    metric.Float64Histogram
	batchSize  metric.Int64Histogram
	commitDur  metric.Float64Histogram
	commitErrs metric.Int64Counter
	rebalances metric.Int64Counter

	consumed, commits, misses, restored, errs, retries, dlq metric.Int64ObservableCounter
	finished                                                metric.Int64ObservableCounter
	commitPoint, committed, lag, pending, paused, metaSize  metric.Int64ObservableGauge
	oldestPending                                           metric.Float64ObservableGauge

	base                    []attribute.KeyValue // system and group
	commitOK, commitFail    []metric.RecordOption
	assigned, revoked, lost []metric.AddOption
	reg                     metric.Registration // nil if registration failed

	mu   sync.Mutex
	live map[TopicPartition]*Part        // owned partitions
	tps  map[TopicPartition]*partMetrics // every partition owned since New
}

// partMetrics is one partition's metrics state for the engine's life: its
// counters go on across assignments (counters never go down).
type partMetrics struct {
	consumed  atomic.Int64 // messages taken by workers for a handler call (runq.next)
	retries   atomic.Int64 // failed handler calls followed by another attempt; workers write
	dlq       atomic.Int64 // messages acked after the dead letter took them; workers write
	finished  atomic.Int64 // messages acked as done (MetricFinished); workers write
	metaBytes atomic.Int64 // metadata of the last accepted commit; commit path writes

	// Counts of released Parts, folded in under metrics.mu.
	commits, misses, restored, errs int64

	obs              []metric.ObserveOption // partition attributes
	procObs          []metric.ObserveOption // and messaging.operation.name
	procOK, procFail []metric.RecordOption
	proc             []attribute.KeyValue // procOK's attributes, for error.type
	add              []metric.AddOption
}

// newMetrics creates the instruments on cfg.MeterProvider and registers the
// collection callback. An instrument the provider refuses is logged and
// replaced by a no-op one: metrics never stop the consumer.
func newMetrics(cfg Config) *metrics {
	meter := cfg.MeterProvider.Meter(MeterName)
	m := &metrics{
		live: make(map[TopicPartition]*Part),
		tps:  make(map[TopicPartition]*partMetrics),
	}
	m.base = []attribute.KeyValue{semconv.MessagingSystemKafka}
	if cfg.Group != "" {
		m.base = append(m.base, semconv.MessagingConsumerGroupName(cfg.Group))
	}
	var errs []error
	keep := func(err error) { errs = append(errs, err) }

	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		opts := []metric.Float64HistogramOption{metric.WithDescription(desc), metric.WithUnit("s")}
		if buckets != nil {
			opts = append(opts, metric.WithExplicitBucketBoundaries(buckets...))
		}
		h, err := meter.Float64Histogram(name, opts...)
		if err != nil {
			keep(err)
			return noop.Float64Histogram{}
		}
		return h
	}
	counter := func(name, desc, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			keep(err)
			return noop.Int64Counter{}
		}
		return c
	}
	ocounter := func(name, desc, unit string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			keep(err)
			return noop.Int64ObservableCounter{}
		}
		return c
	}
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		if err != nil {
			keep(err)
			return noop.Int64ObservableGauge{}
		}
		return g
	}

	m.procDur = hist(MetricProcessDuration, "Duration of processing operation.", durationBuckets)
	bs, err := meter.Int64Histogram(MetricBatchSize, metric.WithDescription("Messages per batch handler call."),
		metric.WithUnit("{message}"), metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
	if err != nil {
		keep(err)
		bs = noop.Int64Histogram{}
	}
	m.batchSize = bs
	m.commitDur = hist(MetricCommitDuration, "Duration of offset commit requests.", durationBuckets)
	m.commitErrs = counter(MetricCommitErrors, "Partition commits that failed or were refused.", "{commit}")
	m.rebalances = counter(MetricRebalancePartitions, "Partitions assigned, revoked or lost.", "{partition}")

	m.consumed = ocounter(MetricConsumed, "Number of messages that were delivered to the application.", "{message}")
	m.commits = ocounter(MetricCommits, "Commits the broker accepted.", "{commit}")
	m.misses = ocounter(MetricMetadataMisses, "Commits whose done set did not fit the metadata budget.", "{commit}")
	m.restored = ocounter(MetricRestored, "Messages skipped because commit metadata marked them done.", "{message}")
	m.errs = ocounter(MetricHandlerErrors, "Handler errors and panics.", "{message}")
	m.retries = ocounter(MetricRetries, "Failed handler calls followed by another attempt.", "{retry}")
	m.dlq = ocounter(MetricDeadLettered, "Messages acked after the dead letter took them.", "{message}")
	m.finished = ocounter(MetricFinished, "Messages done with: handled, dead-lettered or acked by the error policy.", "{message}")

	m.commitPoint = gauge(MetricCommitPoint, "Offset below which every message is handled.", "{offset}")
	m.committed = gauge(MetricCommitted, "Last offset the broker accepted from this member.", "{offset}")
	m.lag = gauge(MetricLag, "Log end offset minus commit point.", "{message}")
	m.pending = gauge(MetricPending, "Messages fetched and not yet handled.", "{message}")
	m.paused = gauge(MetricPaused, "1 while the partition is paused (window full or over its share of the byte budget), else 0.", "{partition}")
	m.metaSize = gauge(MetricMetadataSize, "Commit metadata bytes in the last accepted commit.", "By")
	og, err := meter.Float64ObservableGauge(MetricOldestPendingAge,
		metric.WithDescription("How long the commit point has not moved while messages are pending."),
		metric.WithUnit("s"))
	if err != nil {
		keep(err)
		og = noop.Float64ObservableGauge{}
	}
	m.oldestPending = og

	fail := append(m.base[:len(m.base):len(m.base)], semconv.ErrorTypeOther)
	m.commitOK = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(m.base...))}
	m.commitFail = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(fail...))}
	event := func(ev string) []metric.AddOption {
		kv := append(m.base[:len(m.base):len(m.base)], attribute.String("inorder.rebalance.event", ev))
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	m.assigned, m.revoked, m.lost = event("assigned"), event("revoked"), event("lost")

	reg, err := meter.RegisterCallback(m.observe,
		m.consumed, m.commits, m.misses, m.restored, m.errs, m.retries, m.dlq, m.finished,
		m.commitPoint, m.committed, m.lag, m.pending, m.paused, m.metaSize, m.oldestPending)
	if err != nil {
		keep(err)
	}
	m.reg = reg
	if err := errors.Join(errs...); err != nil {
		cfg.Logger.Warn("inorder: metrics partly unavailable", "error", err)
	}
	return m
}

// part returns tp's metrics state, creating it. Under m.mu.
func (m *metrics) part(tp TopicPartition) *partMetrics {
	pm := m.tps[tp]
	if pm != nil {
		return pm
	}
	kv := append(m.base[:len(m.base):len(m.base)],
		semconv.MessagingDestinationName(tp.Topic),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(tp.Partition))))
	set := attribute.NewSet(kv...)
	proc := append(kv[:len(kv):len(kv)], semconv.MessagingOperationNameKey.String("process"))
	procFail := append(proc[:len(proc):len(proc)], semconv.ErrorTypeOther)
	pm = &partMetrics{
		obs:      []metric.ObserveOption{metric.WithAttributeSet(set)},
		procObs:  []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(proc...))},
		add:      []metric.AddOption{metric.WithAttributeSet(set)},
		procOK:   []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(proc...))},
		procFail: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(procFail...))},
		proc:     proc,
	}
	m.tps[tp] = pm
	return pm
}

// assign starts reporting p. Session.Assign calls it before p receives
// messages.
func (m *metrics) assign(p *Part) {
	m.mu.Lock()
	p.m = m.part(p.TP)
	m.live[p.TP] = p
	m.mu.Unlock()
	m.rebalances.Add(bg, 1, m.assigned...)
}

// release stops reporting p's gauges and folds its counters into the
// partition's. Session.revoke calls it.
func (m *metrics) release(p *Part, lost bool) {
	m.mu.Lock()
	if m.live[p.TP] == p {
		delete(m.live, p.TP)
	}
	pm := p.m
	pm.commits += p.commits.Load()
	pm.misses += p.misses.Load()
	pm.restored += p.restored.Load()
	pm.errs += p.errors.Load()
	pm.metaBytes.Store(0) // until the next owner's first commit
	m.mu.Unlock()
	if lost {
		m.rebalances.Add(bg, 1, m.lost...)
	} else {
		m.rebalances.Add(bg, 1, m.revoked...)
	}
}

// timing reports whether handler calls are to be timed: a reader collects
// MetricProcessDuration. Workers call it once per run.
func (m *metrics) timing() bool { return m.procDur.Enabled(bg) }

// handled records the duration of a handler call on p that started at
// start (see start) and returned err. Workers call it.
func (m *metrics) handled(p *Part, start time.Time, err error) {
	pm := p.m
	if start.IsZero() {
		return
	}
	opts := pm.procOK
	if err != nil {
		opts = errorTypeOpts(pm, err)
	}
	m.procDur.Record(bg, time.Since(start).Seconds(), opts...)
}

// batch records the size of a batch handler call. Workers call it.
func (m *metrics) batch(n int) {
	if m.batchSize.Enabled(bg) {
		m.batchSize.Record(bg, int64(n), m.commitOK...)
	}
}

// commit records a commit request of offs that took d and returned errs
// (one per offset) or err (the whole request). Session.commitParts calls
// it, under its commit lock.
func (m *metrics) commit(offs []Offset, errs []error, err error, d time.Duration) {
	if err != nil {
		m.commitDur.Record(bg, d.Seconds(), m.commitFail...)
	} else {
		m.commitDur.Record(bg, d.Seconds(), m.commitOK...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range offs {
		pm := m.part(o.TP)
		if err != nil || errs[i] != nil {
			m.commitErrs.Add(bg, 1, pm.add...)
			continue
		}
		pm.metaBytes.Store(int64(len(o.Metadata)))
	}
}

// observe is the collection callback: gauges of the owned partitions,
// counters of every partition owned since New.
func (m *metrics) observe(_ context.Context, o metric.Observer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tp, pm := range m.tps {
		commits, misses, restored, errs := pm.commits, pm.misses, pm.restored, pm.errs
		if p := m.live[tp]; p != nil {
			st := p.stats()
			commits += st.Commits
			misses += st.MetadataMisses
			restored += st.Restored
			errs += st.Errors
			o.ObserveInt64(m.commitPoint, st.CommitPoint, pm.obs...)
			o.ObserveInt64(m.committed, st.Committed, pm.obs...)
			if st.LogEnd >= 0 {
				o.ObserveInt64(m.lag, st.Lag, pm.obs...)
			}
			o.ObserveInt64(m.pending, st.Pending, pm.obs...)
			o.ObserveFloat64(m.oldestPending, st.Stuck.Seconds(), pm.obs...)
			var paused int64
			if p.Paused() {
				paused = 1
			}
			o.ObserveInt64(m.paused, paused, pm.obs...)
			o.ObserveInt64(m.metaSize, pm.metaBytes.Load(), pm.obs...)
		}
		o.ObserveInt64(m.consumed, pm.consumed.Load(), pm.procObs...)
		o.ObserveInt64(m.commits, commits, pm.obs...)
		o.ObserveInt64(m.misses, misses, pm.obs...)
		o.ObserveInt64(m.restored, restored, pm.obs...)
		o.ObserveInt64(m.errs, errs, pm.obs...)
		o.ObserveInt64(m.retries, pm.retries.Load(), pm.obs...)
		o.ObserveInt64(m.dlq, pm.dlq.Load(), pm.obs...)
		o.ObserveInt64(m.finished, pm.finished.Load(), pm.obs...)
	}
	return nil
}

// close unregisters the collection callback: a stopped engine reports
// nothing more. Engine.Stop calls it.
func (m *metrics) close() {
	if m.reg != nil {
		_ = m.reg.Unregister()
	}
}
