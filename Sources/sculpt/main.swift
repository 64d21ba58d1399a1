print("sculpt")
