package kafkatest

// This file holds the administrative requests: topics, committed offsets,
// log end offsets. They go through franz-go's kgo client with raw kmsg
// requests (kgo routes each to the coordinator or the partition leader).

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopic creates topic with the given number of partitions. An existing
// topic is an error.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	if topic == "" {
		return fmt.Errorf("%w: empty topic name", ErrBadArgument)
	}
	if partitions < 1 {
		return fmt.Errorf("%w: partitions %d < 1", ErrBadArgument, partitions)
	}
	cl, err := c.kgoClient()
	if err != nil {
		return err
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("kafkatest: create topic %q: %w", topic, err)
		}
	}
	return nil
}

// Partitions returns the number of partitions of topic.
func (c *Cluster) Partitions(ctx context.Context, topic string) (int32, error) {
	cl, err := c.kgoClient()
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("kafkatest: metadata %q: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, fmt.Errorf("kafkatest: metadata %q: %w", topic, err)
		}
		return int32(len(t.Partitions)), nil
	}
	return 0, fmt.Errorf("kafkatest: metadata %q: %w", topic, kerr.UnknownTopicOrPartition)
}

// Commit is a group's committed offset for one partition, its metadata and
// the leader epoch it was committed with (-1: none).
type Commit struct {
	Offset      int64
	Metadata    string
	LeaderEpoch int32
}

// Committed returns the offsets group has committed for topic, by partition.
// Partitions without a commit are absent.
func (c *Cluster) Committed(ctx context.Context, group, topic string) (map[int32]Commit, error) {
	n, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	cl, err := c.kgoClient()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range n {
		rt.Partitions = append(rt.Partitions, p)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: offset fetch %q: %w", group, err)
	}
	out := make(map[int32]Commit)
	add := func(t string, p int32, off int64, meta *string, epoch int32, code int16) error {
		if code == kerr.GroupIDNotFound.Code {
			return nil
		}
		if err := kerr.ErrorForCode(code); err != nil {
			return fmt.Errorf("kafkatest: offset fetch %q %s[%d]: %w", group, t, p, err)
		}
		if t != topic || off < 0 {
			return nil
		}
		cm := Commit{Offset: off, LeaderEpoch: epoch}
		if meta != nil {
			cm.Metadata = *meta
		}
		out[p] = cm
		return nil
	}
	if len(resp.Groups) > 0 {
		for _, g := range resp.Groups {
			if g.ErrorCode == kerr.GroupIDNotFound.Code {
				return out, nil // kfake: no commit yet
			}
			if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafkatest: offset fetch %q: %w", group, err)
			}
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					if err := add(t.Topic, p.Partition, p.Offset, p.Metadata, p.LeaderEpoch, p.ErrorCode); err != nil {
						return nil, err
					}
				}
			}
		}
		return out, nil
	}
	if resp.ErrorCode == kerr.GroupIDNotFound.Code {
		return out, nil // kfake: no commit yet
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("kafkatest: offset fetch %q: %w", group, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := add(t.Topic, p.Partition, p.Offset, p.Metadata, p.LeaderEpoch, p.ErrorCode); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// LogEnd returns the log end offset (the high watermark: one past the last
// record or transaction marker) of every partition of topic.
func (c *Cluster) LogEnd(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.listEnds(ctx, topic, 0)
}

// listEnds returns the latest offset of every partition of topic at
// isolation level iso: 0, the log end; 1 (read committed), the last stable
// offset.
func (c *Cluster) listEnds(ctx context.Context, topic string, iso int8) (map[int32]int64, error) {
	what := "list offsets"
	if iso == 1 {
		what = "list stable offsets"
	}
	n, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	cl, err := c.kgoClient()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = iso
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range n {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: %s %q: %w", what, topic, err)
	}
	out := make(map[int32]int64, n)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafkatest: %s %s[%d]: %w", what, topic, p.Partition, err)
			}
			out[p.Partition] = p.Offset
		}
	}
	if int32(len(out)) != n {
		return nil, fmt.Errorf("kafkatest: %s %q: %d of %d partitions answered", what, topic, len(out), n)
	}
	return out, nil
}

// AddPartitions grows topic to total partitions (a CreatePartitions
// request) and waits until the cluster's own client sees them, so that
// Produce spreads over the new count.
func (c *Cluster) AddPartitions(ctx context.Context, topic string, total int32) error {
	if total < 1 {
		return fmt.Errorf("%w: partitions %d < 1", ErrBadArgument, total)
	}
	cl, err := c.kgoClient()
	if err != nil {
		return err
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic = topic
	rt.Count = total
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafkatest: create partitions %q: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("kafkatest: create partitions %q: %w", topic, err)
		}
	}
	// The producer's metadata refresh is asynchronous: wait for it.
	for {
		if leader, _, err := cl.PartitionLeader(topic, 0); leader < 0 && err == nil {
			return nil // the producer has not loaded the topic: its first produce will
		}
		cl.ForceMetadataRefresh()
		if leader, _, err := cl.PartitionLeader(topic, total-1); err == nil && leader >= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: create partitions %q: waiting for the producer to see them: %w", topic, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
