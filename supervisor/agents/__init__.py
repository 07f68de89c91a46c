"""What Stratavore knows of each agent: profiles, command resolution, sessions, provider limits."""
