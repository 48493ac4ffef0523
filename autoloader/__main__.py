from autoloader.cli.main import main

main()
