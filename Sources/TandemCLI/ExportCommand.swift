import ArgumentParser
import Foundation
import TandemCore
import TandemStore

/// The patient's copy of their data (HIPAA §164.524): everything their replica holds for
/// them, as one JSON document or one FHIR R4 Bundle, on standard output or in a file only
/// they can read.
///
/// ```
/// tandem export --fhir --out ~/my-journal.fhir.json
/// ```
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write your copy of your records: journal, consents, notes shared with you, and who received what."
    )

    enum Format: String, EnumerableFlag {
        case json, fhir

        static func help(for value: Self) -> ArgumentHelp? {
            switch value {
            case .json: ArgumentHelp("One JSON document (docs/cli.md).")
            case .fhir: ArgumentHelp("One FHIR R4 Bundle (docs/fhir.md).")
            }
        }
    }

    @Flag var format: Format = .json

    @Option(help: ArgumentHelp("Write to this file, readable by you only, instead of standard output.", valueName: "file"))
    var out: String?

    @Flag(help: "Replace the --out file if it exists.")
    var force = false

    @OptionGroup var home: HomeOptions

    func validate() throws {
        if force && out == nil { throw ValidationError("--force only applies with --out.") }
        if let out, out.isEmpty { throw ValidationError("--out needs a file name.") }
    }

    func run() throws {
        let store = try home.resolved.openStore()
        guard store.identity.role == .patient else {
            throw CLIError.invalidChoice(
                "tandem export writes a patient's copy of their own records; this home is a \(store.identity.role.rawValue)'s.")
        }
        // Refused before anything is read: a refused command writes nothing.
        if let out { try ExportFile.checkTarget(out, force: force) }
        let content = try ExportContent(store: store, nowMillis: SystemWallClock().nowMillis())
        let text: String
        switch format {
        case .json: text = try Self.jsonText(ExportJSON(content))
        case .fhir: text = try Self.jsonText(FHIRExport.bundle(content))
        }
        guard let out else { return print(text) }
        try ExportFile.save(Data((text + "\n").utf8), to: out, replacing: force)
        print("Exported to \(out), readable by you only. It holds your health records: keep it private.")
    }

    /// Sorted keys, pretty, as every `--json` output (docs/cli.md).
    static func jsonText(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return prettyJSON(try encoder.encode(value))
    }
}

/// Writes an export file: whole or not at all, mode 0600, never over an existing file
/// unless asked.
enum ExportFile {
    /// Refuses a target that exists (unless `force`), is a folder, or whose folder does not exist.
    ///
    /// - Throws: `CLIError.invalidChoice` naming the problem.
    static func checkTarget(_ path: String, force: Bool) throws {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
            if isFolder.boolValue { throw CLIError.invalidChoice("\(path) is a folder; give --out a file name.") }
            if !force { throw CLIError.invalidChoice("\(path) exists; give --force to replace it.") }
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw CLIError.invalidChoice("The folder \(folder) does not exist.")
        }
    }

    /// Writes `data` to a new file of mode 0600 in the target's folder, flushes it to disk,
    /// then moves it into place: with `replacing`, over any file there (rename); without,
    /// only if no file is there (link, which never replaces), so a file created meanwhile
    /// is not overwritten either.
    ///
    /// - Throws: `CLIError.invalidChoice` naming the file and the system's reason.
    static func save(_ data: Data, to path: String, replacing: Bool) throws {
        let target = URL(fileURLWithPath: path)
        let folder = target.deletingLastPathComponent().path
        let temporary = folder + "/.\(target.lastPathComponent).\(UUID().uuidString).partial"
        let fd = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("Cannot create a file in \(folder)") }
        do {
            // The mode is the file's own, whatever the umask.
            guard fchmod(fd, 0o600) == 0 else {
                let error = failure("Cannot set the mode of \(temporary)")
                close(fd)
                throw error
            }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            do {
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try handle.close()
            } catch {
                throw CLIError.invalidChoice("Cannot write \(path): the disk refused it (full, or read-only?).")
            }
            if replacing {
                guard rename(temporary, target.path) == 0 else { throw failure("Cannot replace \(path)") }
            } else {
                guard link(temporary, target.path) == 0 else {
                    if errno == EEXIST { throw CLIError.invalidChoice("\(path) exists; give --force to replace it.") }
                    throw failure("Cannot create \(path)")
                }
                unlink(temporary)
            }
        } catch {
            unlink(temporary)
            throw error
        }
        // The new name is durable once the folder is.
        let folderFD = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderFD >= 0 {
            fsync(folderFD)
            close(folderFD)
        }
    }

    /// `what`, then the system's reason (errno), as one sentence.
    private static func failure(_ what: String) -> CLIError {
        CLIError.invalidChoice("\(what): \(String(cString: strerror(errno))).")
    }
}
