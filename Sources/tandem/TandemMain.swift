import TandemCLI

@main
enum TandemMain {
    static func main() async {
        await TandemCommand.runFromCommandLine()
    }
}
