from kumo.runtime.cli import main

main()
