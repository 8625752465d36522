package kafkago

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Issue 22: every version of the consumer protocol's subscription (Java's
// and librdkafka's 1 to 3 carry owned partitions, a generation and a rack
// after the user data; kafka-go's ConsumerGroup writes a version 1 without
// them) is read for its topics and user data, and ours is read by kmsg as
// the version it says it is.
func TestSubscriptionsOfEveryVersionAreRead(t *testing.T) {
	rack := "r1"
	for v := int16(0); v <= 3; v++ {
		m := kmsg.ConsumerMemberMetadata{Version: v, Topics: []string{"a", "b"}, UserData: []byte("ud"),
			OwnedPartitions: []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: "a", Partitions: []int32{1, 2}}},
			Generation:      7, Rack: &rack}
		topics, ud, err := decodeSubscription(m.AppendTo(nil))
		if err != nil || !slices.Equal(topics, m.Topics) || string(ud) != "ud" {
			t.Errorf("version %d: got %v %q %v, want [a b] \"ud\" <nil>", v, topics, ud, err)
		}
	}
	// kafka-go's ConsumerGroup: version 1, no owned partitions; null user data.
	kg := append([]byte{0, 1, 0, 0, 0, 1, 0, 1, 'a'}, 0xff, 0xff, 0xff, 0xff)
	if topics, ud, err := decodeSubscription(kg); err != nil || !slices.Equal(topics, []string{"a"}) || ud != nil {
		t.Errorf("kafka-go's version 1: got %v %q %v", topics, ud, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 0, 0, 1, 0, 5, 'a'}} {
		if _, _, err := decodeSubscription(bad); !errors.Is(err, errShort) {
			t.Errorf("%v: got %v, want errShort", bad, err)
		}
	}

	ours := encodeSubscription([]string{"x", "y"}, []byte{9})
	var got kmsg.ConsumerMemberMetadata
	if err := got.ReadFrom(ours); err != nil || got.Version != 0 || !slices.Equal(got.Topics, []string{"x", "y"}) || string(got.UserData) != "\x09" {
		t.Errorf("ours read by kmsg: %+v %v", got, err)
	}
}

// Assignments of any version are read; ours are read by kmsg.
func TestAssignmentsRoundTrip(t *testing.T) {
	for v := int16(0); v <= 3; v++ {
		a := kmsg.ConsumerMemberAssignment{Version: v, UserData: []byte("x"),
			Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "a", Partitions: []int32{0, 3}}, {Topic: "b", Partitions: []int32{1}}}}
		got, err := decodeAssignment(a.AppendTo(nil))
		if err != nil || !slices.Equal(got["a"], []int32{0, 3}) || !slices.Equal(got["b"], []int32{1}) || len(got) != 2 {
			t.Errorf("version %d: got %v %v", v, got, err)
		}
	}
	if got, err := decodeAssignment(nil); err != nil || len(got) != 0 {
		t.Errorf("empty: got %v %v, want nothing assigned", got, err)
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(encodeAssignment(map[string][]int{"b": {2}, "a": {0, 1}})); err != nil ||
		len(a.Topics) != 2 || a.Topics[0].Topic != "a" || !slices.Equal(a.Topics[0].Partitions, []int32{0, 1}) {
		t.Errorf("ours read by kmsg: %+v %v", a, err)
	}
	if _, err := decodeAssignment([]byte{0, 0, 0, 0, 0, 1}); !errors.Is(err, errShort) {
		t.Errorf("truncated: got %v, want errShort", err)
	}
}

// kafka-go's Heartbeat response decoding swaps two fields (heartbeatError):
// the coordinator's errors must still be seen.
func TestHeartbeatErrorsAreSeen(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("hb", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(c.Addrs()...)}
	resp, err := client.Heartbeat(ctx, &kafka.HeartbeatRequest{GroupID: "nobody", GenerationID: 1, MemberID: "m"})
	if err != nil {
		t.Fatal(err)
	}
	// kfake answers an unknown group's heartbeat with GROUP_ID_NOT_FOUND or
	// UNKNOWN_MEMBER_ID; either way, not success.
	if err := heartbeatError(resp); err == nil {
		t.Fatalf("heartbeat of an unknown member: no error (response %+v)", resp)
	}
}
