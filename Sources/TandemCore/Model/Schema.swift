/// The field tables of the known collections (PROTOCOL.md §6): each field's merge kind,
/// value rule and the projections that may carry it.
///
/// ```swift
/// try Schema.validate(change, in: .journal)          // throws on mood 11
/// Schema.carries(.metrics, .journal, field: "text") // false
/// ```
public enum Schema {
    /// One row of a field table.
    public struct FieldSpec: Sendable {
        /// An exact name, or a prefix ending in `.` for set elements.
        public let name: String
        public let kind: MergeKind
        public let rule: ValueRule
        public let projections: Set<Projection>

        public var isPrefix: Bool { name.hasSuffix(".") }

        /// Exact names match themselves; `symptom.` takes a name from the vocabulary; any
        /// other prefix takes the 32 hex digits of `SetElement.field(prefix:normalizedText:)`.
        func matches(_ field: FieldName) -> Bool {
            guard isPrefix else { return field.rawValue == name }
            guard field.rawValue.hasPrefix(name) else { return false }
            let suffix = field.rawValue.utf8.dropFirst(name.utf8.count)
            if name == "symptom." { return Symptom(rawValue: String(decoding: suffix, as: UTF8.self)) != nil }
            return suffix.count == 32 && suffix.allSatisfy { hexValue($0) != nil && !($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F")) }
        }
    }

    /// The rule a field's value must keep.
    public enum ValueRule: Sendable, Equatable {
        case int(ClosedRange<Int64>)
        case bool
        /// UTF-8 text of at most this many bytes.
        case text(maxBytes: Int)
        /// Element text, or null once removed (`SetElement`).
        case elementOrNull
        case localDateTime
        case localDate
        /// Milliseconds since 1970 UTC.
        case instant
        case oneOf([String])

        public var description: String {
            switch self {
            case .int(let range): "a whole number from \(range.lowerBound) to \(range.upperBound)"
            case .bool: "true or false"
            case .text(let max): "text of at most \(max) bytes"
            case .elementOrNull: "text of 1 to \(SetElement.maxBytes) bytes, or null to remove it"
            case .localDateTime: LocalDateTime.rule
            case .localDate: LocalDate.rule
            case .instant: "a time in milliseconds since 1970"
            case .oneOf(let names): "one of " + names.joined(separator: ", ")
            }
        }

        func accepts(_ value: Value) -> Bool {
            switch (self, value) {
            case (.int(let range), .int(let v)): range.contains(v)
            case (.bool, .bool): true
            case (.text(let max), .string(let s)): s.utf8.count <= max
            case (.elementOrNull, .null): true
            case (.elementOrNull, .string(let s)): (try? SetElement.display(s, field: "")) == s
            case (.localDateTime, .string(let s)): (try? LocalDateTime(parsing: s))?.description == s
            case (.localDate, .string(let s)): (try? LocalDate(parsing: s))?.description == s
            case (.instant, .int(let v)): v >= 0 && v <= Int64(HybridTimestamp.maxWallMillis)
            case (.oneOf(let names), .string(let s)): names.contains(s)
            default: false
            }
        }
    }

    /// Collections only the server writes; a push that touches one is refused.
    public static let serverAuthoritative: Set<CollectionName> = [.member]

    /// The longest free text: 64 KiB.
    public static let maxTextBytes = 64 * 1024
    /// Hours slept are stored in quarter hours, 0 to 96.
    public static let maxQuarterHours: Int64 = 96

    static let metricsAndJournal: Set<Projection> = [.metrics, .journal]

    /// Field tables by collection. The record row (`""`) lists who sees a record's create
    /// and tombstone at all.
    public static let tables: [CollectionName: [FieldSpec]] = [
        .journal: [
            FieldSpec(name: "at", kind: .lww, rule: .localDateTime, projections: metricsAndJournal),
            FieldSpec(name: "mood", kind: .lww, rule: .int(0...10), projections: metricsAndJournal),
            FieldSpec(name: "craving", kind: .lww, rule: .int(0...10), projections: metricsAndJournal),
            FieldSpec(name: "slept", kind: .lww, rule: .int(0...maxQuarterHours), projections: metricsAndJournal),
            FieldSpec(name: "symptom.", kind: .lww, rule: .bool, projections: metricsAndJournal),
            FieldSpec(name: "tag.", kind: .lww, rule: .elementOrNull, projections: [.journal]),
            FieldSpec(name: "text", kind: .mv, rule: .text(maxBytes: maxTextBytes), projections: [.journal]),
        ],
        .note: [
            FieldSpec(name: "date", kind: .lww, rule: .localDate, projections: [.sharedNote]),
            FieldSpec(name: "text", kind: .mv, rule: .text(maxBytes: maxTextBytes), projections: [.sharedNote]),
            FieldSpec(name: "followup.", kind: .lww, rule: .elementOrNull, projections: [.sharedNote]),
            FieldSpec(name: "shared", kind: .lww, rule: .bool, projections: [.sharedNote]),
        ],
        .consent: [
            FieldSpec(name: "purpose", kind: .lww, rule: .text(maxBytes: 500), projections: [.consent]),
            FieldSpec(name: "revoked", kind: .min, rule: .instant, projections: [.consent]),
        ],
        .member: [
            FieldSpec(name: "name", kind: .lww, rule: .text(maxBytes: 200), projections: [.directory]),
            FieldSpec(name: "role", kind: .lww, rule: .oneOf(Role.allCases.map(\.rawValue)), projections: [.directory]),
        ],
    ]

    /// Who sees a record's create and tombstone.
    public static let recordProjections: [CollectionName: Set<Projection>] = [
        .journal: metricsAndJournal, .note: [.sharedNote], .consent: [.consent], .member: [.directory],
    ]

    /// The set-once keys of each collection's create, with their rules (besides `collection`).
    public static let createKeys: [CollectionName: [String: CreateRule]] = [
        .journal: [:],
        .note: ["patient": .member],
        .consent: ["patient": .member, "recipient": .member, "scope": .scope, "expires": .instantOrNull],
        .member: [:],
    ]

    public enum CreateRule: Sendable {
        case member, scope, instantOrNull

        func accepts(_ value: Value) -> Bool {
            switch (self, value) {
            case (.member, .bytes(let b)): b.count == 16
            case (.scope, .string(let s)): ConsentScope(rawValue: s) != nil
            case (.instantOrNull, .null): true
            case (.instantOrNull, .int(let v)): v >= 0 && v <= Int64(HybridTimestamp.maxWallMillis)
            default: false
            }
        }
    }

    /// The table row for a field, if the collection and field are known.
    public static func spec(_ collection: CollectionName, field: FieldName) -> FieldSpec? {
        tables[collection]?.first { $0.matches(field) }
    }

    /// Whether a reader through `projection` may receive `field` of a record in `collection`.
    /// Create and tombstone changes use `FieldName.record`. Unknown fields: never.
    public static func carries(_ projection: Projection, _ collection: CollectionName, field: FieldName) -> Bool {
        if field.isRecord { return recordProjections[collection]?.contains(projection) ?? false }
        return spec(collection, field: field)?.projections.contains(projection) ?? false
    }

    /// Checks a change against its collection's table (PROTOCOL.md §6).
    ///
    /// Only known collections pass. Fields the table does not know pass, kept as opaque
    /// values for newer versions, except under a set's prefix: a `symptom.` field names a
    /// symptom of the vocabulary, a `tag.` or `followup.` field the hash of its text, so no
    /// health text rides in a field name. A known field must have its kind and keep its
    /// rule. Members are the server's.
    ///
    /// - Throws: `TandemCoreError.invalidValue` or `.invalidChange`, naming the field and
    ///   rule (never a refused field name: it could be the very text kept out of names).
    public static func validate(_ change: Change, in collection: CollectionName) throws(TandemCoreError) {
        try change.validateShape()
        guard let table = tables[collection], let keys = createKeys[collection] else {
            throw .invalidChange(reason: "no collection of that name is known (PROTOCOL.md §6)")
        }
        switch change.kind {
        case .tombstone:
            return
        case .create:
            guard let map = change.value.mapValue else { return }
            for (key, rule) in keys {
                guard let value = map[key], rule.accepts(value) else {
                    throw .invalidValue(field: key, rule: "a \(collection) must be created with a valid '\(key)'")
                }
            }
            for key in map.keys where key != CreateKey.collection && keys[key] == nil {
                throw .invalidChange(reason: "a \(collection) has no set-once field '\(safeKey(key))'")
            }
        case .lww, .mv, .min:
            guard let spec = spec(collection, field: change.field) else {
                if let set = table.first(where: { $0.isPrefix && change.field.rawValue.hasPrefix($0.name) }) {
                    throw .invalidChange(reason: set.name == "symptom."
                        ? "a symptom field names a symptom of the vocabulary (PROTOCOL.md §6)"
                        : "a '\(set.name)' field is named by the 32-hex-digit hash of its text (PROTOCOL.md §2.4)")
                }
                return
            }
            guard spec.kind == change.kind else {
                throw .invalidChange(reason: "'\(change.field)' merges as \(spec.kind), not \(change.kind)")
            }
            guard spec.rule.accepts(change.value) else {
                throw .invalidValue(field: change.field.rawValue, rule: spec.rule.description)
            }
            // An element's text must be the one its field is named after.
            if case .elementOrNull = spec.rule, case .string(let text) = change.value,
               !SetElement.belongs(text, to: change.field, prefix: String(spec.name.dropLast())) {
                throw .invalidValue(field: change.field.rawValue, rule: "an element is kept in the field its normalized text's hash names (PROTOCOL.md §2.4)")
            }
        }
    }

    /// A create key is shown in an error only if it looks like a field name.
    static func safeKey(_ key: String) -> String { FieldName.isValid(key.utf8) ? key : "?" }
}

/// What a consent lets its recipient read (PROTOCOL.md §6.3).
public enum ConsentScope: String, CaseIterable, Hashable, Sendable {
    /// Numbers, dates and symptoms: the `metrics` projection.
    case metrics
    /// Everything in the journal, text and tags included: the `journal` projection.
    case journal
    /// The patient's metrics may be counted, de-identified, in the center's statistics
    /// (PROTOCOL.md §6.3). Granted to `MemberID.center` only; it reaches no device.
    case aggregate

    /// The projection through which the recipient's devices read the journal: none for
    /// `aggregate`, whose recipient is the center, not a person.
    public var projection: Projection? {
        switch self {
        case .metrics: .metrics
        case .journal: .journal
        case .aggregate: nil
        }
    }
}
