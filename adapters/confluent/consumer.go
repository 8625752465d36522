package confluent

// This file holds the Consumer: construction, Run, Close and Stats. The
// poll loop and the rebalance callback are in loop.go.

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Consumer consumes topics as a member of a consumer group through
// librdkafka, handles messages on many goroutines and commits, per
// partition, only offsets below which every message is handled. Create it
// with NewConsumer; call Run once at a time. Stats and Close may be called
// concurrently with Run.
type Consumer struct {
	group  string
	topics []string
	opts   *engine.Options
	cfg    *config // librdkafka's own settings (opts.Adapter)
	cm     kafka.ConfigMap

	eng atomic.Pointer[engine.Engine[*kafka.Message]]

	life engine.Lifecycle
}

// NewConsumer returns a consumer of topics for group, bootstrapping from
// brokers (host:port; may be empty if WithConfigMap sets bootstrap.servers).
// It checks the configuration with librdkafka without joining the group. It
// returns an error wrapping ErrInvalidConfig and naming the field or the
// librdkafka setting for missing brokers, group or topics, out-of-range
// options, settings that would break the guarantees (see WithConfigMap) and
// settings librdkafka rejects.
func NewConsumer(brokers []string, group string, topics []string, opts ...Option) (*Consumer, error) {
	o, cfg, cm, err := newOptions(brokers, group, topics, opts)
	if err != nil {
		return nil, err
	}
	// Let librdkafka check every setting (unknown names, bad values) now
	// rather than at Run. The probe handle has no broker to contact;
	// closing an unsubscribed one is immediate.
	probe := cloneMap(cm)
	probe["bootstrap.servers"] = "" // nothing to dial
	probe["log_level"] = 0          // nor to log about it
	delete(probe, "debug")          // which would print to stderr
	kc, err := kafka.NewConsumer(&probe)
	if err != nil {
		return nil, fmt.Errorf("%w: librdkafka: %w", ErrInvalidConfig, err)
	}
	_ = kc.Close()
	return &Consumer{
		group:  group,
		topics: slices.Clone(topics),
		opts:   o,
		cfg:    cfg,
		cm:     cm,
	}, nil
}

func cloneMap(m kafka.ConfigMap) kafka.ConfigMap {
	out := make(kafka.ConfigMap, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
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

// Run joins the group and consumes until ctx ends, Close is called or,
// under StopOnError, a handler fails. handler is called concurrently (up to
// Concurrency calls at once) with messages of the partitions this member
// owns; a message is done when handler returns. On each revoke and at the
// end, Run stops handing out the partitions' messages, waits at most
// RevokeTimeout for in-flight ones, stores and commits the commit points
// synchronously and releases the partitions; at the end it closes the
// librdkafka consumer (leaving the group). It returns nil after a clean
// shutdown, the handler's error wrapped in ErrHandler under StopOnError,
// ErrRunning if already running, ErrClosed once Close was called, an error
// wrapping ErrAssign when an assignment cannot be set up (its reads fail
// with an authorization, configuration or fatal error; transient failures
// are retried with backoff for as long as they last, logged at Warn once
// per assignment, while the other partitions are consumed), and one
// wrapping ErrClient on a fatal librdkafka error or when the brokers refuse
// the credentials or the authorization; librdkafka's kafka.Error is wrapped
// (errors.As finds it). Unreachable brokers are retried by librdkafka until
// ctx ends. A Run that ends (ctx, Close) before the group ever answered returns an
// error wrapping ErrNeverJoined and the last connection or join error.
// Unreachable brokers and missing topics are logged at Warn once, then at
// most once a minute.
//
// RunBatch is the same with a handler that takes a batch of messages per
// call (WithBatch).
func (c *Consumer) Run(ctx context.Context, handler func(ctx context.Context, msg *kafka.Message) error) error {
	if handler == nil {
		return fmt.Errorf("%w: handler is nil", ErrInvalidConfig)
	}
	h := engine.Handler[*kafka.Message](handler)
	if c.transactional() { // Produce finds the message through the call's context
		h = engine.Transactional(h, func(m *kafka.Message) int64 { return int64(m.TopicPartition.Offset) })
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[*kafka.Message] {
		return engine.New(cfg, h, func(m *kafka.Message) []byte { return m.Key })
	})
}

// RunBatch is Run with a handler that takes up to WithBatch's maxSize
// messages per call (default 100; a worker holding fewer waits up to maxWait,
// default 10ms, for more): one round trip to a database or an index for many
// messages. What a batch may hold follows WithOrdering: Unordered, any
// messages, across partitions; ByKey, several messages of a key in offset
// order, the key busy for the whole call; ByPartition, consecutive messages
// of one partition. The handler returns nil when every msg is done;
// &BatchError{Index: i, Err: err} when msgs[:i] are done and msgs[i] failed
// (msgs[i] goes through WithRetry and the dead letter like a single msg,
// Permanent(err) included; msgs[i+1:] are handed out again without an
// attempt counted, in key order); any other error (or a panic) fails every
// msg of the batch once. The handler must not keep the slice after it
// returned. Everything else (life cycle, options, Stats, Close, the errors
// returned, an error wrapping ErrInvalidConfig for a nil handler) is as for
// Run.
func (c *Consumer) RunBatch(ctx context.Context, handler func(ctx context.Context, msgs []*kafka.Message) error) error {
	if handler == nil {
		return fmt.Errorf("%w: batch handler is nil", ErrInvalidConfig)
	}
	if c.transactional() {
		return fmt.Errorf("%w: RunBatch does not support WithTransactionalID yet: use Run", ErrInvalidConfig)
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[*kafka.Message] {
		return engine.NewBatch(cfg, engine.BatchHandler[*kafka.Message](handler), func(m *kafka.Message) []byte { return m.Key })
	})
}

// run is Run and RunBatch, with mk the one place their engine
// differs.
func (c *Consumer) run(ctx context.Context, mk func(engine.Config) *engine.Engine[*kafka.Message]) error {
	ctx, end, err := c.life.Begin(ctx)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: Close returns only when every other
	// deferred step is done.
	defer end()

	ecfg := c.opts.Config.ForGroup(c.group)
	ecfg.FrozenAfter = c.opts.SessionTimeout
	// librdkafka completes a rebalance only once the commits in flight
	// returned, and a Commit cannot be cancelled (commit.go): a revoke does
	// not wait for one past its RevokeTimeout, which would hold the poll
	// loop past max.poll.interval.ms and make librdkafka leave the group.
	ecfg.ClientWaitsForCommits = true
	if topic := c.opts.DeadLetterTopic; topic != "" {
		// Closed after the engine stopped (deferred first), and after the
		// dead-letter calls still running returned: a handler the engine
		// abandoned at its stop may still be in one.
		dl, err := c.newDeadLetter(topic)
		if err != nil {
			return err
		}
		defer dl.Close()
		ecfg.DeadLetter = func(ctx context.Context, m any, err error, attempts int) error {
			return dl.Produce(ctx, m.(*kafka.Message), err, attempts)
		}
		if c.transactional() { // the message goes in the transaction that commits m
			ecfg.DeadLetter = func(ctx context.Context, m any, err error, attempts int) error {
				return dl.Add(ctx, m.(*kafka.Message), err, attempts)
			}
		}
	}
	// Handle: a Close called from inside the handler does not wait for it.
	eng := mk(ecfg)
	eng.SetSize(messageSize)
	r, err := newRunner(c, eng)
	if err != nil {
		return err
	}
	c.eng.Store(eng)
	defer c.eng.Store(nil)
	r.w = engine.NewWatch(ecfg, c.brokers(), c.opts.RequestTimeout)
	return r.w.End(r.run(ctx))
}

// messageSize is what a message holds for MaxBufferedBytes: key, value and
// headers.
func messageSize(mp **kafka.Message) int {
	m := *mp
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Close stops a running Run (as if its ctx had ended) and waits until it
// has returned: in-flight messages drained (at most RevokeTimeout), commits
// made, group left, and the librdkafka handles destroyed only once every
// call into them has returned: a commit returns when librdkafka does (a
// silent coordinator: about 3 x (RequestTimeout + 1s), see the package
// doc), a dead-letter produce of a handler abandoned after RevokeTimeout
// within about RequestTimeout. Close is final: a Run that had not yet started when
// Close was called (including one whose goroutine was started just before)
// returns ErrClosed without joining the group. Close returns nil, also
// when not running; it may be called any number of times, from any
// goroutine. Called from inside a handler (on the
// handler's own goroutine), Close starts the shutdown and returns at once,
// without waiting for the Run that waits for that very handler: the
// handler returns, its message is acked and committed by the final
// drain, and Run returns (wait for Run itself to know when). That holds in
// a handler of any Consumer: Close cannot tell them apart.
func (c *Consumer) Close() error {
	c.life.Close()
	return nil
}
