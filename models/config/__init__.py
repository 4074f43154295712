"""Configuration read from files and the environment: settings, governance profiles, the agency directory."""
