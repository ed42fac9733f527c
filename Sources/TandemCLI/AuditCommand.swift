import ArgumentParser
import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemStore

/// The member's own accounting of disclosures: who received their records, when, on which
/// device, in which scope, under which consent (42 CFR §2.24, HIPAA §164.528), as this
/// device received it at each sync, and a check of the server's copy against it.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show who received your records: when, on which device, what, and under which consent.",
        subcommands: [Show.self, Verify.self],
        defaultSubcommand: Show.self
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "List who received your records, a line per person, day, scope and device (the default).")

        @Option(help: ArgumentHelp("Only from this day on (YYYY-MM-DD, local time).", valueName: "date"))
        var since: String?

        @Flag(help: "Print every entry as JSON (docs/cli.md).")
        var json = false

        @Flag(help: "Print every entry as CSV.")
        var csv = false

        @OptionGroup var home: HomeOptions

        func validate() throws {
            if json && csv { throw ValidationError("Choose one of --json and --csv.") }
        }

        func run() throws {
            let store = try home.resolved.openStore()
            var entries = try store.disclosureEntries()
            if let since {
                let day = try DateInput.date(since)
                let start = try DateInput.startOfDay(after: try LocalDate(daysSince1970: day.daysSince1970 - 1))
                entries = entries.filter { $0.at >= start }
            }
            if json { return try printJSON(entries) }
            if csv {
                print("sequence,at,recipient,recipient_name,recipient_role,device,device_name,scope,consent,records,hash")
                for entry in entries {
                    var fields: [String] = [String(entry.sequence), isoMillis(UInt64(max(0, entry.at))), entry.recipient]
                    fields += [entry.recipientName ?? "", entry.recipientRole ?? "", entry.device ?? "", entry.deviceName ?? ""]
                    fields += [entry.scope, entry.consent ?? "", entry.records.joined(separator: " "), entry.hash]
                    print(fields.map(AdminCommand.Audit.csvField).joined(separator: ","))
                }
                return
            }
            guard !entries.isEmpty else {
                return print("Nobody has received any of your records\(since == nil ? "" : " since then") (as of this device's last sync).")
            }
            let granted = Dictionary(try store.consents().map { ($0.consent.id.hex, $0.grantedMillis) }, uniquingKeysWith: { first, _ in first })
            let noun = store.identity.role == .patient ? ("entry", "entries") : ("note", "notes")
            for line in Self.lines(entries, granted: granted, noun: noun) { print(line) }
        }

        struct Group: Hashable {
            var recipient: String, day: String, scope: String, device: String?, consent: String?
        }

        /// One line per recipient, local day, scope, device and consent, in time order:
        /// `Mia (mentor) received 12 entries, metrics only, on 3 Dec 2026 on 'Mia's phone', under your consent of 1 Dec 2026.`
        static func lines(_ entries: [DisclosureEntry], granted: [String: UInt64], noun: (String, String)) -> [String] {
            var order: [Group] = []
            var records: [Group: Set<String>] = [:]
            var sample: [Group: DisclosureEntry] = [:]
            for entry in entries {
                let group = Group(
                    recipient: entry.recipient, day: isoDay(UInt64(max(0, entry.at))), scope: entry.scope, device: entry.device, consent: entry.consent)
                if records[group] == nil { order.append(group) }
                records[group, default: []].formUnion(entry.records)
                sample[group] = sample[group] ?? entry
            }
            return order.map { group in
                let entry = sample[group]!
                let count = records[group]?.count ?? 0
                let who = entry.recipientName.map { "\(terminalSafe($0)) (\(entry.recipientRole.flatMap(Role.init(rawValue:))?.rawValue ?? "member"))" } ?? "member \(entry.recipient.prefix(8))"
                let scope = switch group.scope {
                case "metrics": ", metrics only"
                case "journal": ", the whole journal"
                case DisclosureScope.emergency: ", the whole journal, under emergency access"
                default: ""
                }
                let device = entry.deviceName.map { " on '\(terminalSafe($0))'" } ?? group.device.map { " on device \($0.prefix(8))" } ?? ""
                let consent: String
                if let emergency = entry.emergency, group.scope == DisclosureScope.emergency {
                    // §2.51: for whom, where, and the nature of the emergency.
                    consent = ", for \(terminalSafe(emergency.recipient)) at \(terminalSafe(emergency.facility)) (\(terminalSafe(emergency.reason)))"
                } else {
                    consent = group.consent.map { id in granted[id].map { ", under your consent of \(day($0))" } ?? ", under consent \(id.prefix(8))" } ?? ""
                }
                return "\(who) received \(count) \(count == 1 ? noun.0 : noun.1)\(scope), on \(day(UInt64(max(0, entry.at))))\(device)\(consent)."
            }
        }

        /// `3 Dec 2026`, in the local zone.
        static func day(_ millis: UInt64) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = .current
            formatter.dateFormat = "d MMM yyyy"
            return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the server's accounting against every entry and head this device received: report the first entry changed since.")

        @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
        var allowInsecure = false

        @OptionGroup var home: HomeOptions

        func run() async throws {
            let check = try await Syncer(store: try home.resolved.openStore(), allowInsecure: allowInsecure).verifyAccounting()
            let last = check.confirmed.map { "entry \($0.head.sequence), seen \(isoMillis($0.seenMillis))" } ?? "none yet"
            let (entries, brokenAt) = (check.entries, check.brokenAt)
            if let brokenAt {
                print("The server's accounting was changed: entry \(brokenAt) was edited, removed or reordered after this device saw the chain. The last head this device had confirmed: \(last).")
                throw ExitCode(1)
            }
            print("The server's accounting holds: \(entries) entr\(entries == 1 ? "y" : "ies"), matching every entry and head this device received. The last head confirmed: \(last).")
        }
    }
}
