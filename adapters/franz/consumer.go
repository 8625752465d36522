package franz

// This file holds the Consumer: construction, Run, Close and Stats. One
// Run's group callbacks and commits are in group.go, its poll loop in
// poll.go.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Consumer consumes topics as a member of a consumer group through kgo,
// handles records on many goroutines and commits, per partition, only
// offsets below which every record is handled. Create it with NewConsumer;
// call Run once at a time. Stats and Close may be called concurrently with
// Run.
type Consumer struct {
	brokers []string
	group   string
	topics  []string
	opts    *engine.Options
	cfg     *config // kgo's own settings (opts.Adapter)

	eng atomic.Pointer[engine.Engine[*kgo.Record]]

	life engine.Lifecycle
}

// NewConsumer returns a consumer of topics for group, bootstrapping from
// brokers (host:port). It does not connect. It returns an error wrapping
// ErrInvalidConfig and naming the field or the kgo option for missing
// brokers, group or topics, out-of-range options, kgo options that would
// break the guarantees (see WithClientOptions) and options kgo rejects.
func NewConsumer(brokers []string, group string, topics []string, opts ...Option) (*Consumer, error) {
	o, cfg, err := newOptions(brokers, group, topics, opts)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		brokers: slices.Clone(brokers),
		group:   group,
		topics:  slices.Clone(topics),
		opts:    o,
		cfg:     cfg,
	}, nil
}

// Stats returns the statistics of the partitions this member owns now,
// sorted by topic and partition (nil when not running). Safe for concurrent
// use.
func (c *Consumer) Stats() []PartitionStats {
	if e := c.eng.Load(); e != nil {
		return partitionStats(e.Stats())
	}
	return nil
}

// newEngine is the one place Run's engine is created (RunBatch's beside
// it). Handle: a Close called from inside the handler does not wait for it.
func newEngine(cfg engine.Config, h func(context.Context, *kgo.Record) error) *engine.Engine[*kgo.Record] {
	e := engine.New(cfg, engine.Handler[*kgo.Record](h), func(r *kgo.Record) []byte { return r.Key })
	e.SetSize(recordSize)
	return e
}

// recordSize is what a record holds for MaxBufferedBytes: key, value and
// headers.
func recordSize(rp **kgo.Record) int {
	r := *rp
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Run joins the group and consumes until ctx ends, Close is called or,
// under StopOnError, a handler fails. handler is called concurrently (up to
// Concurrency calls at once) with the records of the partitions this member
// owns; a record is done when handler returns. On each revoke and at the
// end, Run stops handing out the partitions' records, waits at most
// RevokeTimeout for in-flight ones, commits synchronously and releases the
// partitions; at the end it leaves the group. It returns nil after a clean
// shutdown, the handler's error wrapped in ErrHandler under StopOnError,
// ErrRunning if already running, ErrClosed once Close was called, an error
// wrapping ErrInvalidConfig for a nil handler, an error wrapping ErrAssign
// if an assigned partition cannot be taken (the engine refuses it, or the
// broker refuses for good, authentication or authorization, to read its
// log start and end: the error names the partitions and wraps the broker's
// error; a transient failure of that read is retried with backoff and does
// not end Run; or its committed offset read fails with a non-retriable
// partition error, such as UNKNOWN_SERVER_ERROR, after which kgo drops the
// partition from the member's assignment), and an error wrapping ErrClient if kgo fails for good
// (authentication, authorization: of fetches, of the group, of the
// committed offsets read). Unreachable brokers are retried by kgo until ctx
// ends. A Run that ends (ctx, Close) before the group ever answered returns an
// error wrapping ErrNeverJoined and the last connection or join error.
// Unreachable brokers and missing topics are logged at Warn once, then at
// most once a minute.
//
// Handlers get a context that ends only after the final drain, not when
// ctx ends. A handler still running RevokeTimeout after that is abandoned
// (logged): Run returns, the goroutine runs on until the handler returns,
// and its record, not committed, is delivered again later.
//
// RunBatch is the same with a handler that takes a batch of records per
// call (WithBatch).
func (c *Consumer) Run(ctx context.Context, handler func(ctx context.Context, rec *kgo.Record) error) error {
	if handler == nil {
		return fmt.Errorf("%w: handler is nil", ErrInvalidConfig)
	}
	h := engine.Handler[*kgo.Record](handler)
	if c.transactional() { // Produce finds the record through the call's context
		h = engine.Transactional(h, func(r *kgo.Record) int64 { return r.Offset })
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[*kgo.Record] { return newEngine(cfg, h) })
}

// RunBatch is Run with a handler that takes up to WithBatch's maxSize
// records per call (default 100; a worker holding fewer waits up to maxWait,
// default 10ms, for more): one round trip to a database or an index for many
// records. What a batch may hold follows WithOrdering: Unordered, any
// records, across partitions; ByKey, several records of a key in offset
// order, the key busy for the whole call; ByPartition, consecutive records
// of one partition. The handler returns nil when every rec is done;
// &BatchError{Index: i, Err: err} when recs[:i] are done and recs[i] failed
// (recs[i] goes through WithRetry and the dead letter like a single rec,
// Permanent(err) included; recs[i+1:] are handed out again without an
// attempt counted, in key order); any other error (or a panic) fails every
// rec of the batch once. The handler must not keep the slice after it
// returned. Everything else (life cycle, options, Stats, Close, the errors
// returned, an error wrapping ErrInvalidConfig for a nil handler) is as for
// Run.
func (c *Consumer) RunBatch(ctx context.Context, handler func(ctx context.Context, recs []*kgo.Record) error) error {
	if handler == nil {
		return fmt.Errorf("%w: batch handler is nil", ErrInvalidConfig)
	}
	if c.transactional() {
		return fmt.Errorf("%w: RunBatch does not support WithTransactionalID yet: use Run", ErrInvalidConfig)
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[*kgo.Record] {
		e := engine.NewBatch(cfg, engine.BatchHandler[*kgo.Record](handler), func(r *kgo.Record) []byte { return r.Key })
		e.SetSize(recordSize)
		return e
	})
}

// run is Run and RunBatch, with mk the one place their engine
// differs.
func (c *Consumer) run(ctx context.Context, mk func(engine.Config) *engine.Engine[*kgo.Record]) error {
	ctx, end, err := c.life.Begin(ctx)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: Close returns only when every other
	// deferred step is done.
	defer end()

	ecfg := c.opts.Config.ForGroup(c.group)
	ecfg.FrozenAfter = c.opts.SessionTimeout
	if topic := c.opts.DeadLetterTopic; topic != "" {
		// Closed after the engine stopped (deferred first): its last
		// dead-letter call has returned by then.
		dl, err := c.newDeadLetter(topic)
		if err != nil {
			return err
		}
		defer dl.Close()
		ecfg.DeadLetter = func(ctx context.Context, m any, err error, attempts int) error {
			return dl.Produce(ctx, m.(*kgo.Record), err, attempts)
		}
		if c.transactional() { // the record goes in the transaction that commits m
			ecfg.DeadLetter = func(ctx context.Context, m any, err error, attempts int) error {
				return dl.Add(ctx, m.(*kgo.Record), err, attempts)
			}
		}
	}
	eng := mk(ecfg)
	r := newRunner(c, eng)
	defer r.stopClient()
	r.w = engine.NewWatch(ecfg, c.brokers, c.opts.RequestTimeout)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.stop = stop
	eng.Start(ctx)
	sess, closeTxn, err := r.newTxnSession(eng)
	if err != nil {
		eng.Stop()
		return err
	}
	defer closeTxn() // after r.run closed the session
	r.sess = sess
	// The client starts joining the group at once: everything its
	// callbacks use is set before, and r.cl by a HookNewClient before kgo
	// starts its goroutines.
	if _, err := kgo.NewClient(r.clientOpts()...); err != nil {
		r.sess.Close(ctx)
		eng.Stop()
		return fmt.Errorf("%w: kgo: %w", ErrInvalidConfig, err)
	}
	c.eng.Store(eng)
	defer c.eng.Store(nil)
	stopWatch := r.w.WatchTopics(runCtx, r.missingTopics)
	err = r.run(runCtx, ctx)
	stopWatch()
	return r.w.End(err)
}

// Close stops a running Run (as if its ctx had ended) and waits until it
// has returned: in-flight records drained (at most RevokeTimeout), commits
// made, group left. Close is final: a Run that had not yet started when
// Close was called returns ErrClosed without joining the group. Close
// returns nil, also when not running; it may be called any number of
// times, from any goroutine. Called from inside a handler (on the
// handler's own goroutine), Close starts the shutdown and returns at once,
// without waiting for the Run that waits for that very handler: the
// handler returns, its message is acked and committed by the final
// drain, and Run returns (wait for Run itself to know when). That holds in
// a handler of any Consumer: Close cannot tell them apart.
func (c *Consumer) Close() error {
	c.life.Close()
	return nil
}

// kgoLogger sends kgo's log lines to the slog logger: errors and warnings
// as such, kgo's info and debug lines at Debug (routine chatter).
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l := slog.LevelDebug
	switch {
	case connErrorIn(keyvals):
		// Reported by the Consumer's Watch, once and then quietly.
	case level == kgo.LogLevelError:
		l = slog.LevelError
	case level == kgo.LogLevelWarn:
		l = slog.LevelWarn
	}
	k.l.Log(context.Background(), l, "kgo: "+msg, keyvals...)
}
