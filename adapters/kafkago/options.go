package kafkago

// This file holds the Consumer's options: the ones every adapter shares
// (defined in the engine; options_shared.go, which genoptions writes,
// exports them with their docs), and kafka-go's own.

//go:generate go run ../../internal/cmd/genoptions -adapter kafkago

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Option configures a Consumer. The options of options_shared.go are shared
// by every adapter of this module (same names, meanings, defaults and
// validation);
// each documents its default and the Java setting it corresponds to.
type Option = engine.Option

// WithTLS makes every connection (group membership, fetches, commits,
// metadata, the drain heartbeats) use TLS with cfg (cloned; the broker's
// host is the ServerName when cfg leaves it empty). Default: plaintext. A
// handshake the certificates fail (unknown authority, wrong host) stops Run
// with an error wrapping ErrClient. Corresponds to the Java
// security.protocol=SSL (or SASL_SSL with WithSASL) and the ssl.* settings.
// A nil cfg is refused by NewConsumer.
func WithTLS(cfg *tls.Config) Option {
	return func(o *engine.Options) {
		c := own(o, "WithTLS")
		if cfg == nil {
			o.Fail(fmt.Errorf("%w: TLS config is nil", ErrInvalidConfig))
			return
		}
		c.tls = cfg.Clone()
	}
}

// WithSASL authenticates every connection (group membership, fetches,
// commits, metadata, the drain heartbeats) with m, for instance kafka-go's
// plain.Mechanism or a scram.Mechanism (SCRAM-SHA-256, SCRAM-SHA-512).
// Default: no authentication. Refused credentials stop Run with an error
// wrapping ErrClient and kafka.SASLAuthenticationFailed. Corresponds to
// the Java sasl.mechanism and sasl.jaas.config settings. A nil m is
// refused by NewConsumer.
func WithSASL(m sasl.Mechanism) Option {
	return func(o *engine.Options) {
		c := own(o, "WithSASL")
		if m == nil {
			o.Fail(fmt.Errorf("%w: SASL mechanism is nil", ErrInvalidConfig))
			return
		}
		c.sasl = m
	}
}

// WithPartitionWatchInterval sets how often the member checks the
// partition counts of its topics; a change (partitions added, a topic
// created or deleted) makes it rejoin the group, so that the new
// partitions are assigned. Default 5s; at least 1ms. Corresponds to the
// Java metadata.max.age.ms.
func WithPartitionWatchInterval(d time.Duration) Option {
	return func(o *engine.Options) {
		c := own(o, "WithPartitionWatchInterval")
		if d < time.Millisecond {
			o.Fail(fmt.Errorf("%w: PartitionWatchInterval must be at least 1ms, got %v", ErrInvalidConfig, d))
			return
		}
		c.watchInterval = d
	}
}

// WithInstanceID makes the member static (KIP-345) under id: a member that
// restarts with the same id within the session timeout gets its partitions
// back without a rebalance (JoinGroup v5+ group.instance.id; SyncGroup,
// Heartbeat and OffsetCommit carry it too). Run's end (its context, Close,
// a failure) drains and commits every partition within RevokeTimeout and
// does not leave the group: the partitions wait, unfetched, for the
// member's return or its session timeout (WithSessionTimeout), after which
// the group rebalances them. Ids must be unique in the group: a second
// member joining with this id fences this one, whose Run then ends with an
// error wrapping ErrFenced and naming id, without a commit and without
// rejoining. Default: none (a dynamic member, which leaves the group at the
// end of Run). An empty id is refused by NewConsumer. Corresponds to the
// Java group.instance.id (kafka-go's ConsumerGroup has none).
func WithInstanceID(id string) Option {
	return func(o *engine.Options) {
		c := own(o, "WithInstanceID")
		if id == "" {
			o.Fail(fmt.Errorf("%w: InstanceID is empty (leave WithInstanceID out for a dynamic member)", ErrInvalidConfig))
			return
		}
		c.instanceID = id
	}
}

// DefaultPartitionWatchInterval is the default of WithPartitionWatchInterval.
const DefaultPartitionWatchInterval = 5 * time.Second

// config is kafka-go's own settings (engine.Options.Adapter).
type config struct {
	dialTimeout   time.Duration
	tls           *tls.Config
	sasl          sasl.Mechanism
	watchInterval time.Duration
	instanceID    string // WithInstanceID; "" for a dynamic member

	// Tests only (export_test.go).
	onGeneration func(member string, generation int32, owned []TopicPartition)
	onCommit     func(member string, generation int32, offs []engine.Offset, errs []error)
	onBackoff    func(time.Duration)
	onFetch      func(tp TopicPartition, offset int64, part *fetchAPI.ResponsePartition)
	balancers    []kafka.GroupBalancer
}

// own returns the kafka-go settings of o, or records that option is not
// one of this package's.
func own(o *engine.Options, option string) *config { return engine.Own[config](o, "kafkago", option) }

func newOptions(brokers []string, group string, topics []string, opts []Option) (*engine.Options, *config, error) {
	cfg := &config{dialTimeout: 5 * time.Second, watchInterval: DefaultPartitionWatchInterval}
	o, err := engine.NewOptions(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := engine.ValidateTarget(brokers, group, topics, false); err != nil {
		return nil, nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if err := o.ValidateDeadLetter(topics); err != nil {
		return nil, nil, err
	}
	return o, cfg, nil
}
