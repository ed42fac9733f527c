/// A patient's consent that a recipient may read part of their journal (PROTOCOL.md §6.3).
///
/// Patient, recipient, scope and expiry are set once in the create. Revocation is a `min`
/// field: every revoke is accepted, and the earliest time counts.
public struct Consent: Hashable, Sendable {
    public var id: RecordID
    public var patient: MemberID
    public var recipient: MemberID
    public var scope: ConsentScope
    /// Milliseconds since 1970 UTC, or nil for no expiry.
    public var expiresMillis: Int64?
    public var purpose: String?
    public var revokedMillis: Int64?

    public init?(_ record: RecordState) {
        let fields = record.createFields
        guard record.collection == .consent, !record.isDeleted,
              let p = fields["patient"]?.bytesValue, let patient = try? MemberID(bytes: p),
              let r = fields["recipient"]?.bytesValue, let recipient = try? MemberID(bytes: r),
              let s = fields["scope"]?.stringValue, let scope = ConsentScope(rawValue: s)
        else { return nil }
        id = record.id
        self.patient = patient
        self.recipient = recipient
        self.scope = scope
        expiresMillis = fields["expires"]?.intValue
        purpose = record.value("purpose")?.stringValue
        revokedMillis = record.value("revoked", kind: .min)?.intValue
    }

    /// Whether the consent lets its recipient read at `nowMillis`.
    public func isActive(atMillis nowMillis: Int64) -> Bool {
        if let revokedMillis, revokedMillis <= nowMillis { return false }
        if let expiresMillis, expiresMillis <= nowMillis { return false }
        return true
    }
}

/// Grants or revokes a consent.
public enum ConsentEdit {
    public static func grant(
        patient: MemberID, recipient: MemberID, scope: ConsentScope, expiresMillis: Int64?, purpose: String?
    ) -> RecordEdit {
        var edit = RecordEdit(collection: .consent)
        edit.createFields = [
            "patient": .bytes(patient.bytes), "recipient": .bytes(recipient.bytes),
            "scope": .string(scope.rawValue), "expires": expiresMillis.map(Value.int) ?? .null,
        ]
        if let purpose { edit.set("purpose", .string(purpose)) }
        return edit
    }

    public static func revoke(atMillis: Int64) -> RecordEdit {
        var edit = RecordEdit(collection: .consent)
        edit.lower("revoked", .int(atMillis))
        return edit
    }
}
