from musicark.cli import main

main()
