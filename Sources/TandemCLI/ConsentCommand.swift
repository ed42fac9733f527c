import ArgumentParser
import Foundation
import TandemCore
import TandemStore

/// What every view of another person's data ends with (42 CFR §2.32).
let partTwoNotice = "42 CFR part 2 prohibits unauthorized disclosure of these records."

/// The member a `--patient` or `--to` names: a member id, or the unique name (letter case
/// aside) of someone in this device's directory (`tandem team`).
func resolveMember(_ text: String, what: String, in store: ReplicaStore) throws -> (id: MemberID, entry: ReplicaStore.DirectoryEntry?) {
    let directory = try store.directory()
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if trimmed.lowercased() == "center" { return (.center, nil) }
    if let id = try? MemberID(hex: trimmed) { return (id, directory.first { $0.member == id }) }
    let named = directory.filter { Member.name($0.name, matches: trimmed) }
    guard named.count == 1, let entry = named.first else {
        throw CLIError.invalidChoice(named.isEmpty
            ? "No one named \(terminalSafe(trimmed)) is in your team; 'tandem team' lists who is (sync first), or give \(what) a member id."
            : "\(named.count) people in your team are named \(terminalSafe(trimmed)); give \(what) one of their ids: \(named.map(\.member.hex).joined(separator: ", ")).")
    }
    return (entry.member, entry)
}

/// How a person is named to the user: their name and role, else the start of their id.
func personLabel(_ id: MemberID, _ entry: ReplicaStore.DirectoryEntry?) -> String {
    if id == .center { return "the center (de-identified statistics)" }
    guard let entry else { return "member \(id.hex.prefix(8))" }
    return "\(terminalSafe(entry.name)) (\(entry.role.rawValue))"
}

/// Who this device knows to be in its patient's care team: the people its directory names,
/// once a directory arrived. The one rule `consent list` and the on-hold notice share.
struct KnownTeam {
    let directory: [MemberID: ReplicaStore.DirectoryEntry]
    /// A directory arrived (before one does, nobody is known to have left).
    let known: Bool

    init(_ store: ReplicaStore) throws {
        directory = Dictionary(try store.directory().map { ($0.member, $0) }, uniquingKeysWith: { first, _ in first })
        known = try store.directoryDigest() != nil
    }

    /// Whether a consent to `member` may be in force: they are in the team, or no directory arrived yet.
    func includes(_ member: MemberID) -> Bool { member == .center || !known || directory[member] != nil }
}

/// The consents this device's patient has in force as far as it knows (neither revoked
/// nor expired, to someone still in their care team), with the recipient as a person reads
/// them: compared before and after a sync, the difference is consents an unassignment ended.
func consentsInForce(_ store: ReplicaStore) throws -> [RecordID: String] {
    let team = try KnownTeam(store)
    guard store.identity.role == .patient, team.known else { return [:] }
    let now = Int64(SystemWallClock().nowMillis())
    var inForce: [RecordID: String] = [:]
    let member = try store.binding()?.member
    for (consent, _) in try store.consents() where consent.patient == member {
        guard ConsentJSON.status(consent, now: now, inTeam: team.includes(consent.recipient)) == "active" else { continue }
        inForce[consent.id] = personLabel(consent.recipient, team.directory[consent.recipient])
    }
    return inForce
}

/// What a patient is told after a sync in which consents went on hold because their
/// recipient left the care team (nothing else stops a consent without the patient's own
/// doing). A consent on hold resumes if its recipient joins the care team again.
func endedConsentsNotice(before: [RecordID: String], _ store: ReplicaStore) throws -> [String] {
    let after = try consentsInForce(store)
    let now = Int64(SystemWallClock().nowMillis())
    let ended = Set(before.keys).subtracting(after.keys)
    guard !ended.isEmpty else { return [] }
    let consents = Dictionary(try store.consents().map { ($0.consent.id, $0.consent) }, uniquingKeysWith: { first, _ in first })
    return ended.compactMap { id -> String? in
        // Revoked (on another of the patient's devices) or expired: the patient's own doing.
        guard let consent = consents[id], ConsentJSON.status(consent, now: now, inTeam: true) == "active", let who = before[id] else { return nil }
        return "Your consent \(shortID(id)) to \(who) is on hold: they are no longer in your care team, so they receive nothing of yours "
            + "and their devices delete what they hold at their next sync. It resumes if they join your care team again; "
            + "tandem consent revoke \(shortID(id)) ends it."
    }.sorted()
}

/// The scope in plain words, for the consent's question and its listing.
func scopeWords(_ scope: ConsentScope) -> String {
    switch scope {
    case .metrics: "your journal's numbers: mood, craving, hours slept, withdrawal symptoms and when each entry was written; never your free text or tags"
    case .journal: "your whole journal: every entry's mood, craving, sleep, symptoms, tags and free text"
    case .aggregate:
        "your journal's numbers (mood, craving, sleep, withdrawal symptoms), counted with at least ten other patients' in the center's "
            + "de-identified statistics; nobody is shown your entries, your name or your dates, and never your free text or tags"
    }
}

struct ConsentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Decide who in your care team may read your journal, and take it back.",
        subcommands: [Grant.self, List.self, Revoke.self]
    )

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let a member of your care team read your journal, in a scope; print the consent's id.")

        @Option(help: ArgumentHelp("Who may read: a name from 'tandem team', a member id, or center (with --scope aggregate).", valueName: "member"))
        var to: String

        @Option(help: ArgumentHelp(
            "What they may read: metrics (numbers, never text) or journal (everything); aggregate lets the center count your numbers, de-identified.",
            valueName: "scope"))
        var scope: String

        @Option(help: ArgumentHelp("The last day they may read (default: until you revoke), like 2027-03-01.", valueName: "date"))
        var until: String?

        @Option(help: ArgumentHelp("Why you share it, in your words (at most 500 bytes).", valueName: "text"))
        var purpose: String?

        @Flag(help: "Grant without asking (for scripts).")
        var yes = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let home = home.resolved
            let store = try home.openStore()
            guard let binding = try store.binding() else { throw CLIError.invalidChoice("Enroll this device first (tandem enroll): a consent is granted to a member of your center.") }
            guard store.identity.role == .patient else { throw CLIError.invalidChoice("Only a patient grants consent to their journal.") }
            guard let scope = ConsentScope(rawValue: scope.lowercased()) else { throw CLIError.invalidChoice("--scope is metrics, journal or aggregate.") }
            let (recipient, entry) = try resolveMember(to, what: "--to", in: store)
            guard (scope == .aggregate) == (recipient == .center) else {
                throw CLIError.invalidChoice("The center is counted in, with --to center --scope aggregate; a person reads with --scope metrics or journal.")
            }
            guard recipient != binding.member else { throw CLIError.invalidChoice("A consent is granted to someone else.") }
            if let entry, entry.role == .patient || entry.role == .staff {
                throw CLIError.invalidChoice("\(personLabel(recipient, entry)) is not in your care team: consent goes to your mentors and their supervisors.")
            }
            let clock = SystemWallClock()
            let now = clock.nowMillis()
            // The consent ends when the last day given ends, in this device's time zone.
            let expires = try until.map { text -> Int64 in
                let day = try DateInput.date(text)
                let end = try DateInput.startOfDay(after: day)
                guard end > Int64(now) else { throw CLIError.invalidChoice("--until must be today or later.") }
                return end
            }
            if let purpose, purpose.utf8.count > 500 { throw CLIError.invalidChoice("--purpose is at most 500 bytes.") }
            let purpose = purpose?.trimmingCharacters(in: .whitespacesAndNewlines).nilIfEmpty

            // What 42 CFR 2.31 asks a consent to say, once, in plain words.
            var lines = ["You are about to consent that \(personLabel(recipient, entry)) may read \(scopeWords(scope))."]
            lines.append("This covers the entries you wrote before today as well as new ones.")
            lines.append("Purpose: \(purpose.map { terminalSafe($0) } ?? "not stated")")
            lines.append("Until:   \(until.map { "the end of \($0)" } ?? "you revoke it")")
            lines.append(recipient == .center
                ? "You can revoke it at any time with 'tandem consent revoke ID'. Every statistic computed afterwards leaves you out; figures published before stay published."
                : "You can revoke it at any time with 'tandem consent revoke ID'. Their devices then delete what they hold of your journal at their next sync; what they read before stays read.")
            print(lines.joined(separator: "\n"))
            if !yes {
                guard isatty(STDIN_FILENO) == 1 else { throw CLIError.invalidChoice("Nothing was granted: confirm with --yes when not asked on a terminal.") }
                FileHandle.standardOutput.write(Data("Grant this consent? [y/N] ".utf8))
                let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
                guard answer == "y" || answer == "yes" else {
                    print("Nothing was granted.")
                    throw ExitCode(1)
                }
            }
            let edit = ConsentEdit.grant(patient: binding.member, recipient: recipient, scope: scope, expiresMillis: expires, purpose: purpose)
            let id = try home.create(edit, clock: clock)
            print(id.hex)
            print("Granted; it reaches the server at your next sync. To take it back: tandem consent revoke \(shortID(id))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the consents you granted, newest first.")

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @OptionGroup var home: HomeOptions

        func run() throws {
            let store = try home.resolved.openStore()
            // A recipient who left the care team (unassigned) reads nothing any more.
            let team = try KnownTeam(store)
            let directory = team.directory
            func inTeam(_ consent: Consent) -> Bool { team.includes(consent.recipient) }
            let now = Int64(SystemWallClock().nowMillis())
            let consents = try store.consents()
            if json {
                return try printJSON(consents.map {
                    ConsentJSON($0.consent, granted: $0.grantedMillis, to: directory[$0.consent.recipient], now: now, inTeam: inTeam($0.consent))
                })
            }
            guard !consents.isEmpty else { return print("No consents: nobody else reads your journal.") }
            print(table(["ID", "TO", "SCOPE", "GRANTED", "UNTIL", "STATUS", "PURPOSE"], consents.map { consent, granted in
                [
                    shortID(consent.id), personLabel(consent.recipient, directory[consent.recipient]), consent.scope.rawValue,
                    isoDay(granted), consent.expiresMillis.map { isoDay(UInt64(max(0, $0 - 1))) } ?? "until revoked",
                    inTeam(consent) || ConsentJSON.status(consent, now: now, inTeam: true) != "active"
                        ? ConsentJSON.status(consent, now: now, inTeam: true) : "on hold (left your care team)",
                    terminalSafe(consent.purpose ?? ""),
                ]
            }))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a consent back: delivery stops, and their devices delete your data at their next sync.")

        @Argument(help: "The consent's id, or the start of it (tandem consent list).")
        var id: String

        @OptionGroup var home: HomeOptions

        func run() throws {
            let home = home.resolved
            let store = try home.openStore()
            let record = try store.resolve(id)
            guard let state = try store.record(record), let consent = Consent(state) else {
                throw StoreError.wrongCollection(id: record.hex, expected: "consent")
            }
            let directory = try store.directory()
            let who = personLabel(consent.recipient, directory.first { $0.member == consent.recipient })
            if let revoked = consent.revokedMillis, revoked <= Int64(SystemWallClock().nowMillis()) {
                return print("Already revoked: \(who) no longer reads your journal.")
            }
            // Stamped at the server's time as this device last learned it (the server also
            // takes a revoke as of its arrival, whatever the device's clock says).
            let serverNow = Int64(SystemWallClock().nowMillis()) &+ (try store.clock().offsetMillis)
            try home.write(ConsentEdit.revoke(atMillis: serverNow), toRecordNamed: record.hex)
            print(consent.recipient == .center
                ? "Revoked. From your next sync, every statistic the center computes leaves you out."
                : "Revoked. At your next sync, \(who) stops receiving your journal, and their devices delete what they hold of it.")
        }
    }
}

struct ConsentJSON: Encodable {
    var id: String
    var patient: String
    var recipient: String
    var recipientName: String?
    var recipientRole: String?
    var scope: String
    var purpose: String?
    var grantedAt: String
    /// When it ends by itself (UTC), nil for never.
    var expiresAt: String?
    var revokedAt: String?
    /// active, revoked, expired, or on-hold (the recipient left your care team; it resumes if they join it again).
    var status: String

    init(_ consent: Consent, granted: UInt64, to entry: ReplicaStore.DirectoryEntry?, now: Int64, inTeam: Bool) {
        id = consent.id.hex
        patient = consent.patient.hex
        recipient = consent.recipient.hex
        recipientName = consent.recipient == .center ? "center" : entry?.name
        recipientRole = entry?.role.rawValue
        scope = consent.scope.rawValue
        purpose = consent.purpose
        grantedAt = isoMillis(granted)
        expiresAt = consent.expiresMillis.map { isoMillis(UInt64(max(0, $0))) }
        revokedAt = consent.revokedMillis.map { isoMillis(UInt64(max(0, $0))) }
        status = Self.status(consent, now: now, inTeam: inTeam)
    }

    static func status(_ consent: Consent, now: Int64, inTeam: Bool) -> String {
        if let revoked = consent.revokedMillis, revoked <= now { return "revoked" }
        if let expires = consent.expiresMillis, expires <= now { return "expired" }
        return inTeam ? "active" : "on-hold"
    }
}

struct TeamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "team",
        abstract: "List the people you deal with, as the center names them: your care team, or your patients and supervisors.")

    @Flag(help: "Print JSON (docs/cli.md).")
    var json = false

    @OptionGroup var home: HomeOptions

    struct MemberJSON: Encodable {
        /// Nil only in `tandem export` from a home not enrolled yet (no member id).
        var id: String?
        var name: String
        var role: String
    }

    func run() throws {
        let directory = try home.resolved.openStore().directory()
        if json { return try printJSON(directory.map { MemberJSON(id: $0.member.hex, name: $0.name, role: $0.role.rawValue) }) }
        guard !directory.isEmpty else { return print("Nobody yet: the center has assigned you no one, or this device has not synced since.") }
        print(table(["NAME", "ROLE", "ID"], directory.map { [terminalSafe($0.name), $0.role.rawValue, $0.member.hex] }))
    }
}

struct PatientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patients",
        abstract: "List your patients: what each has consented to share with you, their latest entry and your open follow-ups.")

    @Flag(help: "Print JSON (docs/cli.md).")
    var json = false

    @OptionGroup var home: HomeOptions

    struct PatientJSON: Encodable {
        var id: String
        var name: String
        /// The widest scope shared with you now (metrics or journal), nil for none.
        var scope: String?
        /// When the sharing ends by itself (UTC), if it does.
        var sharedUntil: String?
        /// The local date of their latest entry you can see.
        var latestEntry: String?
        /// Your notes about them with follow-up items.
        var notesWithFollowUps: Int
        /// The last local day shared (for the table).
        var untilDay: String? = nil

        enum CodingKeys: String, CodingKey { case id, name, scope, sharedUntil, latestEntry, notesWithFollowUps }
    }

    struct Listing: Encodable {
        var patients: [PatientJSON]
        var notice: String
    }

    func run() throws {
        let store = try home.resolved.openStore()
        let subscriptions = try store.subscriptions()
        let notes = try store.notes()
        let patients = try store.directory().filter { $0.role == .patient }.map { patient -> PatientJSON in
            let shared = subscriptions.filter { $0.channel == patient.member }
            let scope = shared.contains { $0.projection == .journal } ? "journal" : (shared.contains { $0.projection == .metrics } ? "metrics" : nil)
            // The last day shared: none when some subscription has no end.
            let until = shared.contains { $0.untilMillis == nil } ? nil : shared.compactMap(\.untilMillis).max()
            let latest = try store.journal(patient: patient.member).last?.at.map { String($0.prefix(10)) }
            return PatientJSON(
                id: patient.member.hex, name: patient.name, scope: scope, sharedUntil: until.map(isoMillis), latestEntry: latest,
                notesWithFollowUps: notes.filter { $0.patient == patient.member && $0.followUps > 0 }.count,
                untilDay: until.map { isoDay($0 > 0 ? $0 - 1 : 0) })
        }
        if json { return try printJSON(Listing(patients: patients, notice: partTwoNotice)) }
        guard !patients.isEmpty else { return print("No patients: the center has assigned you none, or this device has not synced since.") }
        print(table(["NAME", "SHARED WITH YOU", "LATEST ENTRY", "FOLLOW-UPS", "ID"], patients.map { patient in
            [
                terminalSafe(patient.name), patient.scope.map { $0 + (patient.untilDay.map { " through \($0)" } ?? "") } ?? "nothing",
                patient.latestEntry ?? "-", String(patient.notesWithFollowUps), String(patient.id.prefix(8)),
            ]
        }))
        print(partTwoNotice)
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
