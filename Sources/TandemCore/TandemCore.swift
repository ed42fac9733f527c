// TandemCore: the part of Tandem that does no I/O.
//
// - `Identity/`: distinct 128-bit id types (`ReplicaID`, `RecordID`, `MemberID`).
// - `Clock/`: the hybrid logical clock, `ChangeID` and re-stamping after a skew refusal.
// - `Changes/`: `Change`, `Value`, `MergeKind`, `CausalContext`.
// - `Merge/`: `RecordState` and `ReplicaState`, the merge rules of PROTOCOL.md §5.
// - `Encoding/`: the canonical binary form of a change and of a batch (PROTOCOL.md §3–§4).
// - `Model/`: the collections, their field tables and typed models with validation.
// - `Policy/`: which projection may carry which field.
//
// Everything here is a value type and `Sendable`; time comes in as a `WallClock`.
