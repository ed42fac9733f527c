import ArgumentParser
import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemStore

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Bind this home to a member of a center's server with a one-time code; what you wrote offline syncs as yours."
    )

    @Option(help: ArgumentHelp("The server, like https://tandem.example.org or http://127.0.0.1:8080.", valueName: "url"))
    var server: String

    @Option(help: "The enrollment or device-link code.")
    var code: String

    @Option(help: "A name for this device (default: the host name and the start of this home's replica id).")
    var device: String?

    @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
    var allowInsecure = false

    @OptionGroup var home: HomeOptions

    func run() async throws {
        let home = home.resolved
        try home.create()
        let store: ReplicaStore
        // A home made by `init` keeps its replica and what it wrote; its role must match the code's.
        var role: Role? = nil
        if FileManager.default.fileExists(atPath: home.storePath) {
            store = try home.openStore()
            role = store.identity.role
        } else {
            store = try ReplicaStore.create(at: home.storePath, name: "", role: .patient, wallMillis: SystemWallClock().nowMillis())
        }
        // Two devices set up the same way (both "vm") are still told apart in `device list`.
        let name = device ?? "\(ProcessInfo.processInfo.hostName) \(store.identity.replica.hex.prefix(4))"
        let answer = try await Syncer.enroll(store: store, server: server, code: code, deviceName: name, role: role, allowInsecure: allowInsecure)
        print("Enrolled as \(terminalSafe(answer.name)) (\(terminalSafe(answer.role))), member \(terminalSafe(answer.member)).")
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Push what this device wrote, then pull what changed, until caught up."
    )

    @Flag(help: ArgumentHelp(
        "Print JSON (docs/cli.md): {pushed, replayed, pulled, changedLocally, waiting, quarantined, restamped, purged, repushed, recordsSent, recordsReceived, bytesSent, bytesReceived, disclosuresReceived, accountingBrokenAt?, accountingFailed?, emergencyReads?}; counts are of changes (fields), recordsSent/recordsReceived of records by collection."))
    var json = false

    @Flag(help: "Stay connected: sync whenever the server has news or this home is written to, until interrupted.")
    var watch = false

    @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
    var allowInsecure = false

    @OptionGroup var home: HomeOptions

    func run() async throws {
        let home = home.resolved
        let store = try home.openStore()
        if watch { return try await watchForever(home, store) }
        // A progress line on a terminal for long syncs; scripts get the summary or JSON only.
        let bar = ProgressBar(enabled: !json && ProgressBar().enabled)
        let (report, onHold) = try await home.withSyncLock {
            defer { bar.finish() }
            // Inside the lock: a `sync --watch` of this home tells of what it applied itself.
            let inForce = try consentsInForce(store)
            let report = try await Syncer(store: store, allowInsecure: allowInsecure).sync { bar.update($0) }
            return (report, try endedConsentsNotice(before: inForce, store))
        }
        if json { return try printJSON(report) }
        print(Self.summary(report))
        for line in onHold { print(line) }
        for line in Self.emergencyNotices(report) { print(line) }
        if let broken = report.accountingBrokenAt {
            print("The server's accounting of who received your records no longer follows from what this device holds (entry \(broken)); run tandem audit verify.")
        }
    }

    /// A line for each read of the member's journal under emergency access that this sync
    /// learned of (42 CFR §2.51): who read, for whom, where, when and why.
    static func emergencyNotices(_ report: Syncer.Report) -> [String] {
        (report.emergencyReads ?? []).map { entry in
            let who = terminalSafe(entry.emergency?.staffName ?? entry.recipientName ?? "A staff member")
            let day = isoDay(UInt64(max(0, entry.at)))
            let count = "\(entry.records.count) entr\(entry.records.count == 1 ? "y" : "ies")"
            guard let detail = entry.emergency else {
                return "Your journal was read under emergency access: \(who) (staff) read \(count) on \(day). tandem audit lists it."
            }
            return "Your journal was read under emergency access: \(who) (staff) read \(count) on \(day) for "
                + "\(terminalSafe(detail.recipient)) at \(terminalSafe(detail.facility)); the reason given: \(terminalSafe(detail.reason)). "
                + "tandem audit lists it."
        }
    }

    /// A sync in the words a person uses: entries and notes, not fields.
    /// `Synced: 1 entry sent, 2 entries and 1 note received, nothing waiting.`
    static func summary(_ report: Syncer.Report) -> String {
        func records(_ counts: [String: Int]) -> String {
            let names: [(key: String, one: String, many: String)] = [
                ("journal", "entry", "entries"), ("note", "note", "notes"), ("consent", "consent", "consents"),
                ("member", "member", "members"), ("other", "other record", "other records"),
            ]
            let parts = names.compactMap { name -> String? in
                guard let count = counts[name.key], count > 0 else { return nil }
                return "\(count) \(count == 1 ? name.one : name.many)"
            } + counts.filter { key, count in count > 0 && !names.contains { $0.key == key } }.sorted { $0.key < $1.key }
                .map { "\($0.value) \($0.key) record\($0.value == 1 ? "" : "s")" }
            switch parts.count {
            case 0: return "nothing"
            case 1: return parts[0]
            default: return parts.dropLast().joined(separator: ", ") + " and " + parts[parts.count - 1]
            }
        }
        let waiting = report.waiting == 0 ? "nothing waiting" : "\(report.waiting) change\(report.waiting == 1 ? "" : "s") waiting"
        return "Synced: \(records(report.recordsSent)) sent, \(records(report.recordsReceived)) received, \(waiting)."
    }

    /// One line per sync that moved something (a JSON object per line with `--json`);
    /// connection changes go to standard error.
    private func watchForever(_ home: Home, _ store: ReplicaStore) async throws {
        let allowInsecure = allowInsecure
        let json = json
        let watch = LiveWatch(store: store, homeDirectory: home.path, allowInsecure: allowInsecure)
        try await watch.run(
            sync: { pull in
                try await home.withSyncLock {
                    // Only the lines for people read what was in force before the sync.
                    let inForce = json ? [:] : try consentsInForce(store)
                    let report = try await Syncer(store: store, allowInsecure: allowInsecure).sync(pull: pull)
                    if !json {
                        for line in try endedConsentsNotice(before: inForce, store) { printLineNow(line) }
                        for line in Self.emergencyNotices(report) { printLineNow(line) }
                    }
                    return report
                }
            },
            onEvent: { event in
                switch event {
                case .connected: printError("Connected; watching for changes (Ctrl-C stops).")
                case .disconnected(let reason): printError("Disconnected (\(reason)); reconnecting.")
                case .syncFailed(let why): printError("Sync failed: \(why)")
                case .synced(let report):
                    if json {
                        printJSONLine(report)
                    } else if report.pushed + report.pulled + report.replayed > 0 {
                        printLineNow(Self.summary(report))
                    }
                }
            })
    }
}

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device",
        abstract: "Your devices.",
        subcommands: [Link.self, List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your devices as the server knows them.")

        @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
        var allowInsecure = false

        @OptionGroup var home: HomeOptions

        func run() async throws {
            let (devices, current) = try await Syncer(store: try home.resolved.openStore(), allowInsecure: allowInsecure).devicesMarkingThisOne()
            print(table(["", "DEVICE", "NAME", "ENROLLED", "STATE"], devices.map {
                [$0.id == current ? "*" : "", $0.id, terminalSafe($0.name), isoTime(HybridTimestamp(wallMillis: $0.enrolled)), $0.revoked ? "revoked" : "active"]
            }))
        }
    }

    struct Link: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a short-lived code that enrolls another device of yours: tandem enroll --code CODE on it.")

        @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
        var allowInsecure = false

        @OptionGroup var home: HomeOptions

        func run() async throws {
            let answer = try await Syncer(store: try home.resolved.openStore(), allowInsecure: allowInsecure).link()
            print(answer.code)
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the server this home syncs with, the last sync, changes waiting or set aside, and open conflicts."
    )

    @Flag(help: "Print JSON: {replica, name, role, member, server, lastSync, waiting, quarantined, conflicts}.")
    var json = false

    @OptionGroup var home: HomeOptions

    struct Status: Encodable {
        var replica: String
        var name: String
        var role: String
        var member: String?
        var server: String?
        var lastSync: String?
        var waiting: Int
        var quarantined: Int
        var conflicts: Int
    }

    func run() throws {
        let store = try home.resolved.openStore()
        let binding = try store.binding()
        let status = Status(
            replica: store.identity.replica.hex, name: store.identity.name, role: store.identity.role.rawValue,
            member: binding?.member.hex, server: binding?.server,
            lastSync: binding?.lastSyncMillis.map { isoTime(HybridTimestamp(wallMillis: $0)) },
            waiting: try store.outboxCount(), quarantined: try store.quarantined().count, conflicts: try store.conflicts().count)
        if json { return try printJSON(status) }
        var lines = ["Replica:     \(status.replica) (\(status.name.isEmpty ? "unnamed" : terminalSafe(status.name)), \(status.role))"]
        lines.append("Server:      \(status.server.map { "\(terminalSafe($0)), member \(status.member ?? "?")" } ?? "not enrolled (works offline)")")
        lines.append("Last sync:   \(status.lastSync ?? "never")")
        lines.append("Waiting:     \(status.waiting) change(s) to send")
        if status.quarantined > 0 {
            lines.append(Style.current.warn("Set aside:   \(status.quarantined) change(s) the server refused for good"))
        }
        lines.append("Conflicts:   \(status.conflicts)\(status.conflicts > 0 ? " (tandem conflicts)" : "")")
        print(lines.joined(separator: "\n"))
    }
}
