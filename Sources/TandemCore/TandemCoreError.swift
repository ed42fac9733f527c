/// Everything that can go wrong in `TandemCore`, said so that a person can act on it.
///
/// No case carries health content: values, texts and tags never appear in a
/// description, only field names (which are ASCII and hash free text, PROTOCOL.md §2.4)
/// and the rule that was broken.
public enum TandemCoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Text or bytes that should have been an id were not.
    case invalidIdentifier(kind: String)
    /// Bytes that do not follow the encoding of PROTOCOL.md §3–§4.
    case malformed(Malformation, offset: Int)
    /// A batch or change written by a protocol version this build does not read.
    case unsupportedVersion(found: UInt64, supported: ClosedRange<UInt64>)
    /// Input larger than a configured or protocol limit.
    case limitExceeded(what: String, limit: Int)
    /// A value that breaks its field's rule (PROTOCOL.md §6); `rule` says the rule, not the value.
    case invalidValue(field: String, rule: String)
    /// A change whose shape breaks PROTOCOL.md §2 (for example a context on an `lww` change).
    case invalidChange(reason: String)
    /// The hybrid clock cannot go further (wall time beyond the year 10889).
    case clockExhausted

    public var description: String {
        switch self {
        case .invalidIdentifier(let kind):
            "A \(kind) must be 16 bytes, written as 32 hexadecimal digits."
        case .malformed(let malformation, let offset):
            "The data is malformed at byte \(offset): \(malformation.description)."
        case .unsupportedVersion(let found, let supported):
            "The data uses encoding version \(found), but this build reads versions \(supported.lowerBound) to \(supported.upperBound); update Tandem."
        case .limitExceeded(let what, let limit):
            "Too large: \(what) may be at most \(limit)."
        case .invalidValue(let field, let rule):
            "Invalid value for '\(field)': \(rule)."
        case .invalidChange(let reason):
            "Invalid change: \(reason)."
        case .clockExhausted:
            "The clock cannot issue a later timestamp: the wall time is out of range."
        }
    }
}

/// The ways bytes can fail to be a canonical encoding. The raw value is a stable code
/// (servers put it in error bodies); `description` is the sentence for a person.
public enum Malformation: String, Equatable, Sendable, CaseIterable, CustomStringConvertible {
    case truncated, badMagic, nonMinimalVarint, varintOverflow, trailingBytes, indexOutOfRange
    case invalidUTF8, invalidFieldName, unsortedEntries, duplicateEntry, unusedTableEntry
    case invalidBool, invalidLength, unknownMergeKind, invalidChange

    public var description: String {
        switch self {
        case .truncated: "it ends too early"
        case .badMagic: "it does not start with a Tandem header"
        case .nonMinimalVarint: "a number is not written in its shortest form"
        case .varintOverflow: "a number is too large"
        case .trailingBytes: "there are bytes after the end"
        case .indexOutOfRange: "a table index points past its table"
        case .invalidUTF8: "a text is not valid UTF-8"
        case .invalidFieldName: "a field name has characters outside a-z, 0-9, '.', '_' and '-'"
        case .unsortedEntries: "entries are not in canonical order"
        case .duplicateEntry: "an entry appears twice"
        case .unusedTableEntry: "a table entry is never used"
        case .invalidBool: "a boolean is neither 0 nor 1"
        case .invalidLength: "a length does not match its content"
        case .unknownMergeKind: "a change has an unknown merge kind"
        case .invalidChange: "a change breaks the shape rules of its merge kind"
        }
    }
}
