import ArgumentParser
import Foundation
import TandemCore
import TandemProtocol
import TandemServer

extension AdminCommand {
    /// The accounting of disclosures, as staff export it: every delivery of a member's
    /// records to someone else, with `--verify` checking each member's hash chain.
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export the accounting of disclosures: who received whose records, when, on which device, in which scope, under which consent.")

        @Option(help: ArgumentHelp("Only the disclosures of this member's records (id or unique name).", valueName: "member"))
        var patient: String?

        @Flag(help: "Print JSON (docs/cli.md).")
        var json = false

        @Flag(help: "Print CSV, one row per entry.")
        var csv = false

        @Flag(help: "Check each member's chain of entries; exit 1 if one is broken (an entry edited, removed or reordered).")
        var verify = false

        @OptionGroup var store: StoreOption

        func validate() throws {
            if json && csv { throw ValidationError("Choose one of --json and --csv.") }
        }

        func run() async throws {
            let storage = try store.open()
            var subject: MemberID? = nil
            if let patient { subject = try await storage.member(named: patient).id }
            let entries = try await storage.disclosures(of: subject)
            try await logAction(storage, "audit", "exported the accounting of \(subject.map { "member \($0.hex)" } ?? "every member")\(verify ? ", verified" : "")")
            let names = Dictionary(try await storage.members().map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let broken = verify ? try await storage.brokenChains(entries) : [:]
            func who(_ id: MemberID) -> String { names[id].map { "\(terminalSafe($0.name)) (\($0.role.rawValue))" } ?? "member \(id.hex.prefix(8))" }
            if json {
                try printJSON(AuditJSON(
                    entries: entries.map { DisclosureJSON($0, names: names) },
                    verified: verify ? entriesBySubject(entries).map { subject, count in
                        ChainJSON(subject: subject.hex, entries: count, brokenAt: broken[subject]?.sequence)
                    }.sorted { $0.subject < $1.subject } : nil))
            } else if csv {
                print("at,subject,subject_name,recipient,recipient_name,device,scope,consent,records,sequence,hash")
                for entry in entries {
                    let subjectName: String = names[entry.subject]?.name ?? ""
                    let recipientName: String = names[entry.recipient]?.name ?? ""
                    let records: String = entry.records.map(\.hex).joined(separator: " ")
                    var fields: [String] = [Self.at(entry), entry.subject.hex, subjectName, entry.recipient.hex, recipientName]
                    fields += [entry.device?.hex ?? "", entry.scope, entry.consent?.hex ?? "", records, String(entry.sequence), hexString(entry.hash)]
                    print(fields.map(Self.csvField).joined(separator: ","))
                }
            } else if entries.isEmpty {
                print("No disclosures: nobody has received anyone else's records.")
            } else {
                let rows = entries.map { entry -> [String] in
                    let device: String = entry.device.map(shortID) ?? "none"
                    let consent: String = entry.consent.map(shortID) ?? "none needed"
                    return [Self.at(entry), who(entry.subject), who(entry.recipient), device, entry.scope, String(entry.records.count), consent]
                }
                print(table(["WHEN", "WHOSE", "RECEIVED BY", "DEVICE", "SCOPE", "RECORDS", "CONSENT"], rows))
            }
            guard verify else { return }
            if !json {
                for (subject, count) in entriesBySubject(entries).sorted(by: { $0.key.hex < $1.key.hex }) {
                    if let entry = broken[subject] {
                        printError("The chain of \(who(subject)) is broken at entry \(entry.sequence) of \(count): an entry was edited, removed or reordered.")
                    } else {
                        printError("The chain of \(who(subject)) holds: \(count) entr\(count == 1 ? "y" : "ies").")
                    }
                }
            }
            if !broken.isEmpty { throw ExitCode(1) }
        }

        static func at(_ entry: Disclosure) -> String { isoMillis(UInt64(max(0, entry.atMillis))) }

        func entriesBySubject(_ entries: [Disclosure]) -> [MemberID: Int] {
            entries.reduce(into: [:]) { $0[$1.subject, default: 0] += 1 }
        }

        /// A CSV field, quoted when it holds a comma, a quote or a line break; a member's
        /// name that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`) is
        /// prefixed with `'` so that opening the export runs nothing.
        static func csvField(_ text: String) -> String {
            var text = text
            if let first = text.first, "=+-@\t\r".contains(first) { text = "'" + text }
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
    }

    struct AuditJSON: Encodable {
        var entries: [DisclosureJSON]
        /// With --verify: each member's chain, and where it breaks (nil: it holds).
        var verified: [ChainJSON]?
    }

    struct ChainJSON: Encodable {
        var subject: String
        var entries: Int
        var brokenAt: Int64?
    }

    struct DisclosureJSON: Encodable {
        var sequence: Int64
        var at: String
        var subject: String
        var subjectName: String?
        var recipient: String
        var recipientName: String?
        var recipientRole: String?
        var device: String?
        var scope: String
        var consent: String?
        var records: [String]
        var previous: String
        var hash: String

        init(_ entry: Disclosure, names: [MemberID: Member]) {
            sequence = entry.sequence
            at = isoMillis(UInt64(max(0, entry.atMillis)))
            subject = entry.subject.hex
            subjectName = names[entry.subject]?.name
            recipient = entry.recipient.hex
            recipientName = names[entry.recipient]?.name
            recipientRole = names[entry.recipient]?.role.rawValue
            device = entry.device?.hex
            scope = entry.scope
            consent = entry.consent?.hex
            records = entry.records.map(\.hex)
            previous = hexString(entry.previous)
            hash = hexString(entry.hash)
        }
    }
}
