public import TandemCore

// Emergency access (42 CFR §2.51, PROTOCOL.md §9.17): one named staff member reads one
// patient's journal for a limited time, through the server, never into a store of theirs.

/// The scope a disclosure entry names when the records went out under emergency access; its
/// `consent` then names the emergency access, not a consent.
public enum DisclosureScope {
    public static let emergency = "emergency"
}

/// What §2.51 asks to be recorded of an emergency disclosure, as the patient's device is
/// shown it beside the entry (not hashed: the entry's `consent` names the access, whose
/// record the server keeps).
public struct EmergencyDetail: Codable, Sendable, Equatable {
    /// The staff member who read.
    public var staffName: String
    /// The medical personnel the information went to.
    public var recipient: String
    public var facility: String
    /// The nature of the emergency.
    public var reason: String
    /// Who granted the access on the server's host, and when (ms since 1970).
    public var grantedBy: String
    public var grantedAt: Int64

    public init(staffName: String, recipient: String, facility: String, reason: String, grantedBy: String, grantedAt: Int64) {
        self.staffName = staffName
        self.recipient = recipient
        self.facility = facility
        self.reason = reason
        self.grantedBy = grantedBy
        self.grantedAt = grantedAt
    }
}

/// One journal entry as an emergency read answers it: its current state, text included
/// (every value held, more than one being a conflict).
public struct EmergencyJournalEntry: Codable, Sendable, Equatable {
    public var id: String
    public var at: String?
    public var mood: Int?
    public var craving: Int?
    public var symptoms: [String]
    public var tags: [String]
    public var hoursSlept: Double?
    public var text: [String]

    public init(_ entry: JournalEntry) {
        id = entry.id.hex
        at = entry.at?.description
        mood = entry.mood
        craving = entry.craving
        symptoms = entry.symptoms.sorted().map(\.rawValue)
        tags = entry.tags
        hoursSlept = entry.hoursSlept
        text = entry.text.map(\.text)
    }
}

/// `POST /v1/emergency/journal`: whose journal to read under the caller's emergency access.
/// In the body, not the URL, so that a patient's name never reaches a proxy's access log.
public struct EmergencyReadRequest: Codable, Sendable {
    /// The patient's member id, or their name.
    public var patient: String

    public init(patient: String) { self.patient = patient }
}

/// `POST /v1/emergency/journal`'s answer: a patient's journal, read under the caller's
/// emergency access; the read is in the patient's accounting before this is sent.
public struct EmergencyReadResponse: Codable, Sendable {
    /// The emergency access the read stood on (its id).
    public var access: String
    public var patient: String
    public var patientName: String
    /// When the access ends (ms since 1970, server clock).
    public var expiresAt: Int64
    public var entries: [EmergencyJournalEntry]
    /// The patient's accounting entry this read became.
    public var disclosure: Int64?
    public var serverTime: UInt64
    /// The journal was too long to read whole: these are its oldest changes' entries only.
    public var truncated: Bool?

    public init(
        access: String, patient: String, patientName: String, expiresAt: Int64, entries: [EmergencyJournalEntry], disclosure: Int64?,
        serverTime: UInt64, truncated: Bool? = nil
    ) {
        self.truncated = truncated
        self.access = access
        self.patient = patient
        self.patientName = patientName
        self.expiresAt = expiresAt
        self.entries = entries
        self.disclosure = disclosure
        self.serverTime = serverTime
    }
}
