import TandemCore
import TandemProtocol
import TandemStore

/// Everything a patient's replica holds for them, read once for `tandem export`: who they
/// are, their journal, the consents they granted, the notes shared with them, and the
/// accounting of disclosures as the device received it (docs/cli.md, docs/fhir.md).
///
/// ```swift
/// let content = try ExportContent(store: store, nowMillis: SystemWallClock().nowMillis())
/// let bundle = FHIRExport.bundle(content)
/// ```
struct ExportContent {
    /// A consent the patient granted, with its status now and its recipient as the
    /// directory names them.
    struct GrantedConsent {
        var consent: Consent
        var grantedMillis: UInt64
        var recipient: ReplicaStore.DirectoryEntry?
        /// False when the recipient left the care team (the consent is on hold).
        var inTeam: Bool
        /// `active`, `revoked`, `expired` or `on-hold`, as `consent list` says.
        var status: String
    }

    /// A note a mentor shared with the patient, with its author.
    struct SharedNote {
        var note: MentorNote
        var author: MemberID
        var authorEntry: ReplicaStore.DirectoryEntry?
    }

    var exportedMillis: UInt64
    var name: String
    var role: Role
    /// Nil until the home is enrolled with a server.
    var member: MemberID?
    var replica: ReplicaID
    var server: String?
    /// The patient's own entries, oldest first.
    var journal: [JournalEntry]
    /// Newest first.
    var consents: [GrantedConsent]
    /// By date.
    var notes: [SharedNote]
    /// The member's chain, in order.
    var disclosures: [DisclosureEntry]

    /// Notes someone else wrote are in it: the export carries the notice of 42 CFR §2.32.
    var holdsOthersRecords: Bool { !notes.isEmpty }

    /// Reads what the store holds for its member.
    ///
    /// - Throws: `StoreError` when the store cannot be read.
    init(store: ReplicaStore, nowMillis: UInt64) throws {
        let binding = try store.binding()
        exportedMillis = nowMillis
        name = store.identity.name
        role = store.identity.role
        member = store.identity.member ?? binding?.member
        replica = store.identity.replica
        server = binding?.server

        journal = try store.journal().compactMap { row in try store.record(row.id).flatMap { JournalEntry($0) } }

        // As `consent list`: a recipient who left the care team reads nothing any more.
        let team = try KnownTeam(store)
        let directory = team.directory
        let now = Int64(clamping: nowMillis)
        consents = try store.consents().map { consent, granted in
            let inTeam = team.includes(consent.recipient)
            return GrantedConsent(
                consent: consent, grantedMillis: granted, recipient: directory[consent.recipient], inTeam: inTeam,
                status: ConsentJSON.status(consent, now: now, inTeam: inTeam))
        }

        var notes: [SharedNote] = []
        for row in try store.notes() {
            // Only what another member shared with this patient; a note is theirs to share.
            guard let author = try store.sources(of: row.id).first, let state = try store.record(row.id),
                  let note = MentorNote(state), note.isShared
            else { continue }
            notes.append(SharedNote(note: note, author: author, authorEntry: directory[author]))
        }
        self.notes = notes

        disclosures = try store.disclosureEntries()
    }
}

/// `tandem export --json`: one document, its keys documented in docs/cli.md. The records
/// keep the shapes of `journal show --json`, `consent list --json`, `note show --json` and
/// `audit --json`.
struct ExportJSON: Encodable {
    var format = "tandem-export-1"
    /// When the export was made, UTC.
    var exportedAt: String
    var member: TeamCommand.MemberJSON
    var journal: [JournalEntryJSON]
    var consents: [ConsentJSON]
    var notes: [NoteJSON]
    var disclosures: [DisclosureEntry]
    /// The notice of 42 CFR §2.32, when the export holds records someone else wrote.
    var notice: String?

    init(_ content: ExportContent) {
        exportedAt = isoMillis(content.exportedMillis)
        member = TeamCommand.MemberJSON(id: content.member?.hex, name: content.name, role: content.role.rawValue)
        journal = content.journal.map(JournalEntryJSON.init)
        consents = content.consents.map { granted in
            ConsentJSON(
                granted.consent, granted: granted.grantedMillis, to: granted.recipient, now: Int64(clamping: content.exportedMillis),
                inTeam: granted.inTeam)
        }
        notes = content.notes.map { shared in
            var json = NoteJSON(shared.note)
            json.author = shared.author.hex
            json.notice = partTwoNotice
            return json
        }
        disclosures = content.disclosures
        notice = content.holdsOthersRecords ? partTwoNotice : nil
    }
}
