from aspdigest.cli import main

main()
