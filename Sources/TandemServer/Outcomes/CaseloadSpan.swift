public import TandemCore

/// A time during which a patient was in a mentor's caseload (ms since 1970; `until` nil
/// while it lasts): what the center's statistics per caseload count from, so that a
/// reassignment today changes no week that has ended.
public struct CaseloadSpan: Sendable, Hashable {
    public var mentor: MemberID
    public var patient: MemberID
    public var since: Int64
    public var until: Int64?

    public init(mentor: MemberID, patient: MemberID, since: Int64, until: Int64?) {
        self.mentor = mentor
        self.patient = patient
        self.since = since
        self.until = until
    }

    /// Whether it covers the instant `millis`.
    public func covers(_ millis: Int64) -> Bool { since <= millis && until.map { millis < $0 } ?? true }
}
